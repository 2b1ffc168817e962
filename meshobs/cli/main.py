def main() -> None:
    print("meshobs")
