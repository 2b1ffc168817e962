from meshobs.cli.main import main

main()
