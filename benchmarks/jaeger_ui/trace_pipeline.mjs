// Jaeger UI's trace pipeline, as plain JavaScript for Node: what the UI runs between receiving
// a search answer from Jaeger's /api/traces and showing the critical path of each trace.
//
// jaeger-ui is not published to the npm registry and its repository cannot be reached from
// this machine, so this file re-types the UI's own functions from its published source
// (packages/jaeger-ui/src): model/transform-trace-data.tsx (transformTraceData,
// deduplicateTags, orderTags), selectors/trace.tsx (getTraceSpanIdsAsTree), utils/TreeNode.tsx
// (walk), model/trace-viewer.tsx (getTraceName) and components/TracePage/CriticalPath
// (getChildOfSpans, sanitizeOverFlowingChildren, findLastFinishingChildSpan,
// computeCriticalPath). TypeScript types, React, Redux and memoisation are left out; the data
// work is kept as the UI does it, including its quadratic tag de-duplication.
//
// Usage: node trace_pipeline.mjs REPEATS BODY.json...   prints one JSON line of timings.

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

class TreeNode {
  constructor(value, children = []) { this.value = value; this.children = children; }
  walk(fn, startDepth = 0) {
    const nodeStack = [{ node: this, depth: startDepth }];
    while (nodeStack.length > 0) {
      const { node, depth } = nodeStack.pop();
      fn(node.value, node, depth);
      for (let i = node.children.length - 1; i >= 0; i--) nodeStack.push({ node: node.children[i], depth: depth + 1 });
    }
  }
}

function getTraceSpanIdsAsTree(trace, spanMap = null) {
  const nodesById = new Map(trace.spans.map(span => [span.spanID, new TreeNode(span.spanID)]));
  const spansById = spanMap ?? new Map(trace.spans.map(span => [span.spanID, span]));
  const root = new TreeNode('__root__');
  trace.spans.forEach(span => {
    const node = nodesById.get(span.spanID);
    if (Array.isArray(span.references) && span.references.length) {
      const { refType, spanID: parentID } = span.references[0];
      if (refType === 'CHILD_OF' || refType === 'FOLLOWS_FROM') {
        const parent = nodesById.get(parentID) || root;
        parent.children.push(node);
      } else {
        throw new Error(`Unrecognized ref type: ${refType}`);
      }
    } else {
      root.children.push(node);
    }
  });
  const comparator = (nodeA, nodeB) => {
    const a = spansById.get(nodeA.value);
    const b = spansById.get(nodeB.value);
    return +(a.startTime > b.startTime) || +(a.startTime === b.startTime) - 1;
  };
  trace.spans.forEach(span => {
    const node = nodesById.get(span.spanID);
    if (node.children.length > 1) node.children.sort(comparator);
  });
  root.children.sort(comparator);
  return root;
}

const deduplicateTags = spanTags => {
  const warningsHash = new Map();
  const tags = spanTags.reduce((uniqueTags, tag) => {
    if (!uniqueTags.some(t => t.key === tag.key && t.value === tag.value)) {
      uniqueTags.push(tag);
    } else {
      warningsHash.set(`${tag.key}:${tag.value}`, `Duplicate tag "${tag.key}:${tag.value}"`);
    }
    return uniqueTags;
  }, []);
  return { dedupedTags: tags, warnings: Array.from(warningsHash.values()) };
};

const orderTags = (spanTags, topPrefixes) => {
  const orderedTags = spanTags?.slice() ?? [];
  const tp = (topPrefixes || []).map(p => p.toLowerCase());
  orderedTags.sort((a, b) => {
    const aKey = a.key.toLowerCase();
    const bKey = b.key.toLowerCase();
    for (let i = 0; i < tp.length; i++) {
      const p = tp[i];
      if (aKey.startsWith(p) && !bKey.startsWith(p)) return -1;
      if (!aKey.startsWith(p) && bKey.startsWith(p)) return 1;
    }
    if (aKey > bKey) return 1;
    if (aKey < bKey) return -1;
    return 0;
  });
  return orderedTags;
};

function getTraceName(spans) {
  let candidateSpan;
  const allIDs = new Set(spans.map(({ spanID }) => spanID));
  for (let i = 0; i < spans.length; i++) {
    const hasInternalRef = spans[i].references &&
      spans[i].references.some(({ traceID, spanID }) => traceID === spans[i].traceID && allIDs.has(spanID));
    if (hasInternalRef) continue;
    if (!candidateSpan) { candidateSpan = spans[i]; continue; }
    const thisRefLength = (spans[i].references && spans[i].references.length) || 0;
    const candidateRefLength = (candidateSpan.references && candidateSpan.references.length) || 0;
    if (thisRefLength < candidateRefLength ||
        (thisRefLength === candidateRefLength && spans[i].startTime < candidateSpan.startTime)) {
      candidateSpan = spans[i];
    }
  }
  return candidateSpan ? `${candidateSpan.process.serviceName}: ${candidateSpan.operationName}` : '';
}

function transformTraceData(data) {
  if (!data?.traceID) return null;
  const traceID = data.traceID.toLowerCase();
  let traceEndTime = 0;
  let traceStartTime = Number.MAX_SAFE_INTEGER;
  const spanIdCounts = new Map();
  const spanMap = new Map();
  data.processes = data.processes || {};
  const numSpans = data.spans.length;
  for (let i = 0; i < numSpans; i++) {
    const span = data.spans[i];
    const { startTime, duration, processID } = span;
    let spanID = span.spanID;
    if (startTime < traceStartTime) traceStartTime = startTime;
    if (startTime + duration > traceEndTime) traceEndTime = startTime + duration;
    const idCount = spanIdCounts.get(spanID);
    if (idCount != null) {
      spanIdCounts.set(spanID, idCount + 1);
      spanID = `${spanID}_${idCount}`;
      span.spanID = spanID;
    } else {
      spanIdCounts.set(spanID, 1);
    }
    span.process = data.processes[processID];
    spanMap.set(spanID, span);
  }
  const tree = getTraceSpanIdsAsTree(data, spanMap);
  const spans = [];
  const svcCounts = {};
  tree.walk((spanID, node, depth = 0) => {
    if (spanID === '__root__') return;
    const span = spanMap.get(spanID);
    if (!span) return;
    const { serviceName } = span.process;
    svcCounts[serviceName] = (svcCounts[serviceName] || 0) + 1;
    span.relativeStartTime = span.startTime - traceStartTime;
    span.depth = depth - 1;
    span.hasChildren = node.children.length > 0;
    // childSpanIds sorted by end time, latest first (the critical path relies on it)
    span.childSpanIds = node.children
      .slice()
      .sort((a, b) => {
        const spanA = spanMap.get(a.value);
        const spanB = spanMap.get(b.value);
        return spanB.startTime + spanB.duration - (spanA.startTime + spanA.duration);
      })
      .map(each => each.value);
    span.warnings = span.warnings || [];
    span.tags = span.tags || [];
    span.references = span.references || [];
    const tagsInfo = deduplicateTags(span.tags);
    span.tags = orderTags(tagsInfo.dedupedTags, ['http.']);
    span.warnings = span.warnings.concat(tagsInfo.warnings);
    span.references.forEach((ref, index) => {
      const refSpan = spanMap.get(ref.spanID);
      if (refSpan) {
        ref.span = refSpan;
        if (index > 0) {
          refSpan.subsidiarilyReferencedBy = refSpan.subsidiarilyReferencedBy || [];
          refSpan.subsidiarilyReferencedBy.push({ ...ref, spanID });
        }
      }
    });
    spans.push(span);
  });
  const traceName = getTraceName(spans);
  const services = Object.keys(svcCounts).map(name => ({ name, numberOfSpans: svcCounts[name] }));
  return {
    services, spans, traceID, traceName, processes: data.processes,
    duration: traceEndTime - traceStartTime, startTime: traceStartTime, endTime: traceEndTime,
  };
}

// -- TracePage/CriticalPath ------------------------------------------------------------------

const getChildOfSpans = spanMap => {
  const followFromSpanIds = [];
  spanMap.forEach(each => {
    if (each.references[0]?.refType === 'FOLLOWS_FROM') {
      followFromSpanIds.push(each.spanID);
      const parentSpan = spanMap.get(each.references[0].spanID);
      parentSpan.childSpanIds = parentSpan.childSpanIds.filter(a => a !== each.spanID);
      spanMap.set(parentSpan.spanID, { ...parentSpan });
    }
  });
  const findDescendantSpans = spanIds => {
    spanIds.forEach(spanId => {
      const span = spanMap.get(spanId);
      if (span.hasChildren) {
        followFromSpanIds.push(...span.childSpanIds);
        findDescendantSpans(span.childSpanIds);
      }
    });
  };
  findDescendantSpans(followFromSpanIds);
  followFromSpanIds.forEach(id => spanMap.delete(id));
  return spanMap;
};

const sanitizeOverFlowingChildren = spanMap => {
  const spanIds = [...spanMap.keys()];
  spanIds.forEach(spanId => {
    const span = spanMap.get(spanId);
    if (!(span && span.references.length)) return;
    const parentSpan = spanMap.get(span.references[0].spanID);
    if (!parentSpan) { spanMap.delete(span.spanID); return; }
    const childEndTime = span.startTime + span.duration;
    const parentEndTime = parentSpan.startTime + parentSpan.duration;
    switch (true) {
      case span.startTime >= parentSpan.startTime && childEndTime <= parentEndTime:
        break;
      case span.startTime < parentSpan.startTime && childEndTime <= parentEndTime && childEndTime > parentSpan.startTime:
        spanMap.set(span.spanID, { ...span, startTime: parentSpan.startTime, duration: childEndTime - parentSpan.startTime });
        break;
      case span.startTime >= parentSpan.startTime && childEndTime > parentEndTime && span.startTime < parentEndTime:
        spanMap.set(span.spanID, { ...span, duration: parentEndTime - span.startTime });
        break;
      case span.startTime >= parentEndTime || childEndTime <= parentSpan.startTime:
        parentSpan.childSpanIds = parentSpan.childSpanIds.filter(id => id !== span.spanID);
        spanMap.delete(span.spanID);
        spanMap.set(parentSpan.spanID, { ...parentSpan });
        break;
      default:
        break;
    }
  });
  return spanMap;
};

const findLastFinishingChildSpan = (spanMap, currentSpan, returningChildStartTime) => {
  let lastFinishingChildSpanId;
  if (returningChildStartTime) {
    lastFinishingChildSpanId = currentSpan.childSpanIds.find(
      each => spanMap.has(each) && spanMap.get(each).startTime + spanMap.get(each).duration < returningChildStartTime
    );
  } else {
    lastFinishingChildSpanId = currentSpan.childSpanIds[0];
  }
  return lastFinishingChildSpanId ? spanMap.get(lastFinishingChildSpanId) : undefined;
};

const computeCriticalPath = (spanMap, spanId, criticalPath, returningChildStartTime) => {
  const currentSpan = spanMap.get(spanId);
  const lastFinishingChildSpan = findLastFinishingChildSpan(spanMap, currentSpan, returningChildStartTime);
  let spanCriticalSection;
  if (lastFinishingChildSpan) {
    spanCriticalSection = {
      spanId: currentSpan.spanID,
      section_start: lastFinishingChildSpan.startTime + lastFinishingChildSpan.duration,
      section_end: returningChildStartTime || currentSpan.startTime + currentSpan.duration,
    };
    if (spanCriticalSection.section_start !== spanCriticalSection.section_end) criticalPath.push(spanCriticalSection);
    computeCriticalPath(spanMap, lastFinishingChildSpan.spanID, criticalPath);
  } else {
    spanCriticalSection = {
      spanId: currentSpan.spanID,
      section_start: currentSpan.startTime,
      section_end: returningChildStartTime || currentSpan.startTime + currentSpan.duration,
    };
    if (spanCriticalSection.section_start !== spanCriticalSection.section_end) criticalPath.push(spanCriticalSection);
    if (currentSpan.references.length) {
      const parentSpanId = currentSpan.references.filter(reference => reference.refType === 'CHILD_OF')[0].spanID;
      computeCriticalPath(spanMap, parentSpanId, criticalPath, currentSpan.startTime);
    }
  }
  return criticalPath;
};

function criticalPathForTrace(trace) {
  let criticalPath = [];
  const rootSpanId = trace.spans[0].spanID;
  if (rootSpanId) {
    const spanMap = trace.spans.reduce((map, span) => { map.set(span.spanID, span); return map; }, new Map());
    const refinedSpanMap = getChildOfSpans(spanMap);
    const sanitizedSpanMap = sanitizeOverFlowingChildren(refinedSpanMap);
    criticalPath = computeCriticalPath(sanitizedSpanMap, rootSpanId, criticalPath);
  }
  return criticalPath;
}

// -- the run -----------------------------------------------------------------------------------

const [repeats, ...files] = process.argv.slice(2);
const bodies = files.map(f => readFileSync(f, 'utf8'));
const runs = [];
let traces = 0, spans = 0, sections = 0;
for (let r = 0; r < Number(repeats); r++) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let parseMs = 0;
  traces = spans = sections = 0;
  for (const body of bodies) {
    const p0 = performance.now();
    const doc = JSON.parse(body);
    parseMs += performance.now() - p0;
    for (const raw of doc.data) {
      const trace = transformTraceData(raw);
      const path = criticalPathForTrace(trace);
      traces += 1; spans += trace.spans.length; sections += path.length;
    }
  }
  const cpu = process.cpuUsage(cpu0);  // this process's CPU (V8's GC and compiler threads too)
  runs.push({ total_s: (performance.now() - t0) / 1000, cpu_s: (cpu.user + cpu.system) / 1e6,
              json_parse_s: parseMs / 1000 });
}
console.log(JSON.stringify({ node: process.version, runs, traces, spans, sections }));
