// weft dashboard: plain JS and SVG, no dependencies. Pages are chosen by the
// URL's fragment: #/ (service graph), #/service/NAME, #/proxies, #/tap and
// #/tap/SERVICE (starts tapping it).
// Every few seconds the current page fetches its data again and updates in
// place, without a reload.
'use strict';
(() => {
  const POLL_MS = 5000;
  const SVGNS = 'http://www.w3.org/2000/svg';
  const state = { window: '1m', timer: 0, gen: 0, page: null, loginError: '' };
  // What the browser tests read: how long the last graph render took.
  // updateMs is the last poll's whole time: fetch, decode and render.
  const stats = { renders: 0, layouts: 0, lastMs: 0, lastKind: '', updateMs: 0 };

  // ---- small helpers ----
  const $ = (sel) => document.querySelector(sel);
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v != null && v !== false) e.setAttribute(k, v === true ? '' : v);
    }
    for (const k of kids.flat()) if (k != null) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, v);
    for (const k of kids) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  const fmtRPS = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' rps';
  const fmtSR = (v) => (v == null ? '–' : (v * 100).toFixed(v >= 0.999 || v === 0 ? 0 : 1) + '%');
  const fmtMs = (v) => (v >= 1000 ? (v / 1000).toFixed(2) + ' s' : v >= 10 ? v.toFixed(0) + ' ms' : v.toFixed(1) + ' ms');
  // A service key "name.namespace" is shown as name when the namespace is default.
  const short = (s) => (s.endsWith('.default') ? s.slice(0, -8) : s);
  // health classes a success rate: red under 95%, amber under 99%.
  const health = (g) => (!g || g.successRate == null ? 'idle' : g.successRate < 0.95 ? 'bad' : g.successRate < 0.99 ? 'warn' : 'ok');
  const golden = (g) => (g && g.requests ? `${fmtRPS(g.rps)} · ${fmtSR(g.successRate)} · p99 ${fmtMs(g.p99Ms)}` : 'no requests');
  const serviceLink = (s) => el('a', { href: '#/service/' + encodeURIComponent(s) }, short(s));

  class AuthError extends Error {}
  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ credentials: 'same-origin', headers: { 'Content-Type': 'application/json' } }, opts));
    const body = await r.json().catch(() => ({}));
    if (r.status === 401) throw new AuthError(body.error || 'not signed in');
    if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), { status: r.status });
    return body;
  }
  function setStatus(text, error) {
    const s = $('#status');
    s.textContent = text;
    s.className = error ? 'error' : '';
  }

  // ---- login: trade the one-time token in the fragment for a cookie ----
  async function login() {
    const m = location.hash.match(/^#login=([A-Za-z0-9_-]+)$/);
    if (!m) return;
    history.replaceState(null, '', location.pathname + '#/');
    try {
      await api('session', { method: 'POST', body: JSON.stringify({ token: m[1] }) });
    } catch (e) {
      state.loginError = e.message;
    }
  }
  function signedOut() {
    $('#verdicts').replaceChildren();
    $('#main').replaceChildren(el('h1', null, 'Not signed in'),
      state.loginError ? el('p', { id: 'login-error' }, 'The login link was refused: ' + state.loginError) : null,
      el('p', null, 'Run ', el('code', null, 'weft dashboard'), ' (or read ', el('code', null, 'weft demo'),
        '\'s output) and open the link it prints. A link works once, for a few minutes; the session then lasts 12 hours.'));
    setStatus('not signed in', true);
  }

  // ---- verdicts banner ----
  function showVerdicts(g) {
    const v = $('#verdicts');
    if (g.verdicts.length) {
      v.className = 'bad';
      v.replaceChildren(...g.verdicts.map((x) => el('p', { 'data-culprit': x.culprit }, x.text)));
    } else if (g.nodes.some((n) => n.inbound.requests > 0)) {
      v.className = 'ok';
      v.replaceChildren(el('p', null, 'No service is failing on its own.'));
    } else {
      v.className = '';
      v.replaceChildren(el('p', null, `No traffic in the last ${g.window} yet.`));
    }
  }

  // ---- service graph: a layered layout of the (mostly acyclic) call graph ----
  const NODE_W = 270, NODE_H = 46, COL_W = NODE_W + 190, ROW_H = 64, PAD = 24, DENSE = 150;

  // layout ranks every service by its longest call path from a service no
  // one calls (back edges of cycles ignored), then orders each rank by the
  // mean position of its callers, and returns the coordinates.
  function layout(g) {
    const names = g.nodes.map((n) => n.service);
    const idx = new Map(names.map((n, i) => [n, i]));
    const N = names.length;
    const out = names.map(() => []), ins = names.map(() => []);
    for (const e of g.edges) {
      const a = idx.get(e.source), b = idx.get(e.destination);
      if (a == null || b == null || a === b) continue;
      out[a].push(b);
      ins[b].push(a);
    }
    // Depth-first, from uncalled services first: reverse post-order is a
    // topological order of the graph without its back edges.
    const seen = new Uint8Array(N), post = [];
    const roots = [...names.keys()].sort((a, b) => (ins[a].length === 0 ? 0 : 1) - (ins[b].length === 0 ? 0 : 1));
    for (const r of roots) {
      if (seen[r]) continue;
      seen[r] = 1;
      const stack = [[r, 0]];
      while (stack.length) {
        const top = stack[stack.length - 1];
        if (top[1] < out[top[0]].length) {
          const w = out[top[0]][top[1]++];
          if (!seen[w]) { seen[w] = 1; stack.push([w, 0]); }
        } else {
          post.push(top[0]);
          stack.pop();
        }
      }
    }
    const order = post.reverse(), pos = new Int32Array(N), rank = new Int32Array(N);
    order.forEach((v, i) => { pos[v] = i; });
    for (const v of order) for (const w of out[v]) if (pos[w] > pos[v] && rank[w] < rank[v] + 1) rank[w] = rank[v] + 1;
    const layers = [];
    for (let v = 0; v < N; v++) (layers[rank[v]] ||= []).push(v);
    const slot = new Float64Array(N);
    layers.forEach((l) => l.forEach((v, i) => { slot[v] = i; }));
    for (let sweep = 0; sweep < 2; sweep++) {
      for (let r = 1; r < layers.length; r++) {
        const key = (v) => {
          const ps = ins[v].filter((u) => rank[u] < r);
          return ps.length ? ps.reduce((s, u) => s + slot[u], 0) / ps.length : slot[v];
        };
        const keys = new Map(layers[r].map((v) => [v, key(v)]));
        layers[r].sort((a, b) => keys.get(a) - keys.get(b));
        layers[r].forEach((v, i) => { slot[v] = i; });
      }
    }
    const rows = Math.max(1, ...layers.map((l) => l.length));
    const at = new Map();
    layers.forEach((l, r) => {
      const off = ((rows - l.length) * ROW_H) / 2;
      l.forEach((v, i) => at.set(names[v], { x: PAD + r * COL_W, y: PAD + off + i * ROW_H }));
    });
    return { at, width: PAD * 2 + Math.max(1, layers.length) * COL_W - (COL_W - NODE_W), height: PAD * 2 + rows * ROW_H };
  }

  // edgePath is a cubic from the caller's right side to the callee's left
  // side (a loop above both when the callee is not to the right); it
  // returns the path and the curve's midpoint for the label.
  function edgePath(a, b) {
    const sx = a.x + NODE_W, sy = a.y + NODE_H / 2, tx = b.x, ty = b.y + NODE_H / 2;
    let c1x, c1y, c2x, c2y;
    if (tx > sx) {
      const dx = (tx - sx) / 2;
      [c1x, c1y, c2x, c2y] = [sx + dx, sy, tx - dx, ty];
    } else {
      [c1x, c1y, c2x, c2y] = [sx + 120, sy - 90, tx - 120, ty - 90];
    }
    return {
      d: `M${sx},${sy} C${c1x},${c1y} ${c2x},${c2y} ${tx - 3},${ty}`,
      mx: (sx + 3 * c1x + 3 * c2x + tx) / 8, my: (sy + 3 * c1y + 3 * c2y + ty) / 8,
    };
  }
  const edgeKey = (e) => e.source + '\u2192' + e.destination;
  const topology = (g) => g.nodes.map((n) => n.service).join(',') + '|' + g.edges.map(edgeKey).join(',');

  // The graph's DOM, kept between polls so that an update with the same
  // services and calls only changes classes and labels.
  let view = null;

  function nodeClass(n) {
    return 'node ' + (n.culprit ? 'culprit bad' : health(n.inbound));
  }
  function updateNode(ref, n, callers) {
    ref.g.setAttribute('class', nodeClass(n));
    ref.g.dataset.culprit = n.culprit ? 'true' : 'false';
    ref.g.dataset.rps = n.inbound.rps;
    let sub = golden(n.inbound);
    if (n.culprit) sub = 'CULPRIT · ' + sub;
    else if (callers.has(n.service)) sub = 'errors from ' + callers.get(n.service);
    ref.sub.textContent = sub;
    ref.title.textContent = `${n.service}\ninbound: ${golden(n.inbound)}\noutbound: ${golden(n.outbound)}`;
  }
  function updateEdge(ref, e) {
    ref.g.setAttribute('class', 'edge ' + health(e));
    ref.text.textContent = `${fmtRPS(e.rps)} · ${fmtSR(e.successRate)} · p99 ${fmtMs(e.p99Ms)}`;
    ref.title.textContent = `${short(e.source)} → ${short(e.destination)}: ${e.requests} requests, ${e.failures} failed`;
  }
  // callersOf maps each service whose errors come from a culprit to it.
  function callersOf(g) {
    const m = new Map();
    for (const v of g.verdicts) for (const c of v.callers) if (c !== v.culprit && !m.has(c)) m.set(c, short(v.culprit));
    return m;
  }

  function renderGraph(container, g) {
    const t0 = performance.now();
    const key = topology(g);
    const callers = callersOf(g);
    let kind = 'update';
    if (!view || view.key !== key || !container.contains(view.svg)) {
      kind = 'layout';
      const { at, width, height } = layout(g);
      // Past DENSE edges, only the failing and degraded ones keep a visible
      // label; every edge has its numbers in a tooltip.
      const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'service graph',
        class: g.edges.length > DENSE ? 'dense' : null });
      root.append(svg('defs', null, svg('marker', { id: 'arrow', viewBox: '0 0 8 8', refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto' },
        svg('path', { d: 'M0,0 L8,4 L0,8 z', fill: '#9aa3ad' }))));
      const edges = svg('g', { class: 'edges' }), nodes = svg('g', { class: 'nodes' });
      const refs = { key, svg: root, nodes: new Map(), edges: new Map() };
      for (const e of g.edges) {
        const a = at.get(e.source), b = at.get(e.destination);
        if (!a || !b) continue;
        const p = edgePath(a, b);
        const ref = { g: svg('g', { 'data-edge': edgeKey(e) }), text: svg('text', { x: p.mx, y: p.my - 4, 'text-anchor': 'middle' }), title: svg('title') };
        ref.g.append(svg('path', { d: p.d }), ref.text, ref.title);
        edges.append(ref.g);
        refs.edges.set(edgeKey(e), ref);
      }
      for (const n of g.nodes) {
        const a = at.get(n.service);
        const ref = { g: svg('g', { transform: `translate(${a.x},${a.y})`, 'data-service': n.service }),
          sub: svg('text', { x: 8, y: 36, class: 'sub' }), title: svg('title') };
        ref.g.append(svg('rect', { width: NODE_W, height: NODE_H, rx: 5 }), svg('text', { x: 8, y: 18, class: 'name' }, short(n.service)), ref.sub, ref.title);
        const open = () => { location.hash = '#/service/' + encodeURIComponent(n.service); };
        ref.g.setAttribute('tabindex', '0');
        ref.g.setAttribute('role', 'link');
        ref.g.addEventListener('click', open);
        ref.g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') open(); });
        nodes.append(ref.g);
        refs.nodes.set(n.service, ref);
      }
      root.append(edges, nodes);
      view = refs;
      container.replaceChildren(root);
      stats.layouts++;
    }
    for (const n of g.nodes) updateNode(view.nodes.get(n.service), n, callers);
    for (const e of g.edges) {
      const ref = view.edges.get(edgeKey(e));
      if (ref) updateEdge(ref, e);
    }
    stats.renders++;
    stats.lastKind = kind;
    stats.lastMs = performance.now() - t0;
    view.svg.dataset.renderMs = stats.lastMs.toFixed(1);
  }

  // servicesTable lists culprits first, then failing, degraded, healthy and
  // idle services, by name within each.
  function servicesTable(g) {
    const callers = callersOf(g);
    const order = { bad: 1, warn: 2, ok: 3, idle: 4 };
    const rank = (n) => (n.culprit ? 0 : order[health(n.inbound)]);
    const nodes = [...g.nodes].sort((a, b) => rank(a) - rank(b) || a.service.localeCompare(b.service));
    return el('table', { id: 'services' },
      el('thead', null, el('tr', null, ...['Service', 'Requests/s', 'Success', 'p50', 'p95', 'p99', 'Calls out/s', 'Verdict'].map((h) => el('th', null, h)))),
      el('tbody', null, ...nodes.map((n) => el('tr', { class: n.culprit ? 'culprit' : health(n.inbound), 'data-service': n.service, 'data-rps': n.inbound.rps },
        el('td', null, serviceLink(n.service)),
        el('td', { class: 'num' }, n.inbound.rps.toFixed(2)),
        el('td', { class: 'num health' }, fmtSR(n.inbound.successRate)),
        el('td', { class: 'num' }, fmtMs(n.inbound.p50Ms)),
        el('td', { class: 'num' }, fmtMs(n.inbound.p95Ms)),
        el('td', { class: 'num' }, fmtMs(n.inbound.p99Ms)),
        el('td', { class: 'num' }, n.outbound.rps.toFixed(2)),
        el('td', { class: 'health' }, n.culprit ? 'culprit: failing on its own' : callers.has(n.service) ? 'passes on errors from ' + callers.get(n.service) : '')))));
  }

  const graphPage = {
    mount(main) {
      view = null;
      const sel = el('select', { id: 'window', 'aria-label': 'window' }, ...['1m', '5m', '15m'].map((w) => el('option', { value: w, selected: w === state.window }, w)));
      sel.addEventListener('change', () => { state.window = sel.value; refresh(); });
      main.replaceChildren(el('h1', null, 'Service graph ', el('span', { class: 'muted' }, 'over the last '), sel),
        el('div', { class: 'graph', id: 'graph' }), el('h2', null, 'Services'), el('div', { id: 'table' }));
    },
    async update() {
      const g = await api('api/graph?window=' + state.window);
      showVerdicts(g);
      renderGraph($('#graph'), g);
      $('#table').replaceChildren(servicesTable(g));
      return `${g.nodes.length} services, ${g.edges.length} edges, ${Math.round(g.seconds)} s of ${g.window} (${g.source})`;
    },
  };

  // ---- charts: small SVG line charts over a service's history ----
  function chart(title, points, series, opts) {
    const W = 380, H = 150, L = 46, R = 10, T = 10, B = 22;
    const xs = points.map((p) => Date.parse(p.time));
    const vals = series.map((s) => points.map((p) => s.get(p)));
    const all = vals.flat().filter((v) => v != null);
    const yMin = opts.min != null ? Math.min(opts.min, ...all) : 0;
    const yMax = Math.max(opts.max != null ? opts.max : 0, ...all, yMin + 1e-9);
    const x0 = xs[0] || 0, x1 = xs[xs.length - 1] || 1;
    const px = (x) => L + ((x - x0) / Math.max(1, x1 - x0)) * (W - L - R);
    const py = (y) => T + (1 - (y - yMin) / (yMax - yMin)) * (H - T - B);
    const root = svg('svg', { width: W, height: H, 'data-points': all.length, role: 'img', 'aria-label': title });
    root.append(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }), svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }),
      svg('text', { x: L - 4, y: T + 8, 'text-anchor': 'end' }, opts.fmt(yMax)), svg('text', { x: L - 4, y: H - B, 'text-anchor': 'end' }, opts.fmt(yMin)));
    if (xs.length) {
      const hhmm = (t) => new Date(t).toTimeString().slice(0, 8);
      root.append(svg('text', { x: L, y: H - 6 }, hhmm(x0)), svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, hhmm(x1)));
    }
    vals.forEach((vs, i) => {
      let d = '', pen = false;
      vs.forEach((v, j) => {
        if (v == null) { pen = false; return; }
        d += `${pen ? 'L' : 'M'}${px(xs[j]).toFixed(1)},${py(v).toFixed(1)} `;
        pen = true;
      });
      if (d) root.append(svg('path', { class: 'series s' + i, d, 'data-series': series[i].label }));
    });
    return el('div', { class: 'chart' }, el('h3', null, title), root,
      el('div', { class: 'legend' }, ...series.map((s, i) => el('span', { class: 's' + i }, '— ' + s.label))));
  }

  function edgeTable(edges, other, withRoute) {
    if (!edges.length) return el('p', { class: 'muted' }, 'none in the window');
    return el('table', null,
      el('thead', null, el('tr', null, ...[withRoute ? 'Route' : null, other === 'source' ? 'From' : 'To', 'Requests/s', 'Success', 'p50', 'p95', 'p99'].filter(Boolean).map((h) => el('th', null, h)))),
      el('tbody', null, ...edges.map((e) => el('tr', { class: health(e) },
        withRoute ? el('td', null, e.route) : null,
        el('td', null, serviceLink(e[other])),
        el('td', { class: 'num' }, e.rps.toFixed(2)), el('td', { class: 'num health' }, fmtSR(e.successRate)),
        el('td', { class: 'num' }, fmtMs(e.p50Ms)), el('td', { class: 'num' }, fmtMs(e.p95Ms)), el('td', { class: 'num' }, fmtMs(e.p99Ms))))));
  }

  // targets says whether a stored route or policy applies to the service.
  function targets(obj, name, ns) {
    const m = obj.metadata || {}, spec = obj.spec || {};
    if ((m.namespace || 'default') !== ns) return false;
    if (spec.parentRefs) return spec.parentRefs.some((r) => r.name === name);
    if (spec.targetRef && spec.targetRef.name) return spec.targetRef.name === name;
    return obj.kind === 'AuthorizationPolicy' && !(spec.selector && spec.selector.matchLabels && spec.selector.matchLabels.app && spec.selector.matchLabels.app !== name);
  }
  const KINDS = ['httproutes', 'grpcroutes', 'destinationpolicies', 'authorizationpolicies'];

  const servicePage = (service) => ({
    mount(main) {
      main.replaceChildren(el('h1', null, short(service), el('span', { id: 'badge' })), el('p', { id: 'summary', class: 'muted' }),
        el('p', null, el('a', { href: '#/tap/' + encodeURIComponent(service), id: 'tap-link' }, 'Tap its live requests')),
        el('div', { class: 'charts', id: 'charts' }),
        el('div', { class: 'cols' }, el('div', null, el('h2', null, 'Inbound'), el('div', { id: 'inbound' })), el('div', null, el('h2', null, 'Outbound'), el('div', { id: 'outbound' }))),
        el('h2', null, 'Routes taken by calls into it'), el('div', { id: 'routes' }),
        el('h2', null, 'Endpoints'), el('div', { id: 'endpoints' }),
        el('h2', null, 'Routes and policies'), el('div', { id: 'policies' }));
    },
    async update() {
      const [name, ns] = service.includes('.') ? [service.slice(0, service.indexOf('.')), service.slice(service.indexOf('.') + 1)] : [service, 'default'];
      const [s, mesh, proxies, ...lists] = await Promise.all([
        api('api/services/' + encodeURIComponent(service) + '?window=' + state.window).catch((e) => { if (e.status === 404) return null; throw e; }),
        api('api/mesh'), api('api/proxies'), ...KINDS.map((k) => api('api/resources/' + k)),
      ]);
      if (s) {
        showVerdicts({ verdicts: s.verdicts, nodes: [s.node], window: s.window });
        $('#badge').replaceChildren(s.node.culprit ? el('span', { class: 'badge' }, 'culprit') : '');
        $('#summary').textContent = `inbound ${golden(s.node.inbound)}; outbound ${golden(s.node.outbound)} (last ${s.window})`;
        const h = s.history;
        if (!h.length) {
          $('#charts').replaceChildren(el('p', { class: 'muted' }, `No history: the control plane reads golden metrics from ${s.source}, which keeps it.`));
        } else $('#charts').replaceChildren(
          chart('Requests/s', h, [{ label: 'rps', get: (p) => p.rps }], { fmt: (v) => v.toFixed(1) }),
          chart('Success rate', h, [{ label: 'success %', get: (p) => (p.successRate == null ? null : p.successRate * 100) }], { min: 90, max: 100, fmt: (v) => v.toFixed(0) + '%' }),
          chart('Latency', h, ['p50', 'p95', 'p99'].map((q) => ({ label: q, get: (p) => (p.requests ? p[q + 'Ms'] : null) })), { fmt: fmtMs }));
        $('#inbound').replaceChildren(edgeTable(s.inbound, 'source'));
        $('#outbound').replaceChildren(edgeTable(s.outbound, 'destination'));
        $('#routes').replaceChildren(edgeTable(s.routes, 'source', true));
      } else {
        showVerdicts({ verdicts: [], nodes: [], window: state.window });
        $('#summary').textContent = `no traffic in the last ${state.window}`;
        $('#charts').replaceChildren();
      }
      const m = mesh.services.find((x) => x.name === name && x.namespace === ns);
      const byID = new Map(proxies.proxies.map((p) => [p.id, p]));
      $('#endpoints').replaceChildren(!m || !m.endpoints.length ? el('p', { class: 'muted' }, 'no endpoints registered') : el('table', null,
        el('thead', null, el('tr', null, ...['Workload', 'Address', 'Version', 'Identity', 'Proxy'].map((x) => el('th', null, x)))),
        el('tbody', null, ...m.endpoints.map((e) => {
          const p = byID.get(e.workload);
          const sync = p ? syncState(p) : { text: 'no proxy connected', cls: 'bad' };
          return el('tr', { class: sync.cls }, el('td', null, e.workload), el('td', null, e.address), el('td', null, e.version || ''),
            el('td', null, el('code', null, e.identity)), el('td', { class: 'health' }, sync.text));
        }))));
      const objs = lists.flatMap((l, i) => l.items.filter((o) => targets(o, name, ns)).map((o) => ({ kind: KINDS[i], o })));
      $('#policies').replaceChildren(!objs.length ? el('p', { class: 'muted' }, 'none') : el('table', null,
        el('thead', null, el('tr', null, el('th', null, 'Kind'), el('th', null, 'Name'), el('th', null, 'Status'))),
        el('tbody', null, ...objs.map(({ o }) => el('tr', null, el('td', null, o.kind), el('td', null, o.metadata.name),
          el('td', null, conditions(o)))))));
      return `${short(service)}: ${s ? s.history.length + ' intervals of history' : 'no traffic'}`;
    },
  });
  function conditions(o) {
    const cs = (o.status && (o.status.conditions || (o.status.parents || []).flatMap((p) => p.conditions || []))) || [];
    return cs.map((c) => `${c.type}=${c.status}${c.reason ? ' (' + c.reason + ')' : ''}`).join(', ');
  }

  // ---- proxies ----
  function syncState(p) {
    const nacked = Object.entries(p.nacked || {});
    if (nacked.length) return { text: 'rejected ' + nacked.map(([t, e]) => typeName(t) + ': ' + e).join('; '), cls: 'bad' };
    if (!Object.keys(p.acked || {}).length) return { text: 'waiting for its first ACK', cls: 'warn' };
    return { text: 'synced', cls: 'ok' };
  }
  const typeName = (t) => t.slice(t.lastIndexOf('.') + 1);
  function until(t, now) {
    const s = (Date.parse(t) - Date.parse(now)) / 1000;
    if (s <= 0) return { text: 'expired', cls: 'bad' };
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return { text: `in ${h}h ${m}m`, cls: s < 3600 ? 'warn' : 'ok' };
  }
  const proxiesPage = {
    mount(main) {
      $('#verdicts').replaceChildren();
      main.replaceChildren(el('h1', null, 'Proxies'), el('div', { id: 'proxies' }));
    },
    async update() {
      const { proxies, now } = await api('api/proxies');
      $('#proxies').replaceChildren(!proxies.length ? el('p', { class: 'muted' }, 'No proxy is connected to the control plane.') : el('table', null,
        el('thead', null, el('tr', null, ...['Proxy', 'Service', 'Identity', 'Connected', 'Sync', 'Config version', 'Certificate expires'].map((x) => el('th', null, x)))),
        el('tbody', null, ...proxies.map((p) => {
          const sync = syncState(p), exp = p.certExpiry ? until(p.certExpiry, now) : { text: 'not issued since the control plane started', cls: 'idle' };
          return el('tr', { class: sync.cls === 'ok' ? exp.cls : sync.cls, 'data-proxy': p.id },
            el('td', null, p.id), el('td', null, serviceLink(p.service + '.' + p.namespace)), el('td', null, el('code', null, p.identity)),
            el('td', null, new Date(p.connected).toLocaleString()), el('td', { class: 'health' }, sync.text),
            el('td', null, Object.entries(p.acked || {}).map(([t, n]) => typeName(t) + ' ' + n).join(', ')),
            el('td', { class: 'health', title: p.certExpiry || '' }, exp.text));
        }))));
      return `${proxies.length} proxies`;
    },
  };

  // ---- tap: the live requests of a service, relayed by the control plane ----
  // The stream is Server-Sent Events read with fetch (so that a refusal's
  // message shows); at most TAP_ROWS rows are kept, newest first.
  const TAP_ROWS = 500;
  function tapPage(initial) {
    const st = { abort: null, rows: 0, events: 0, state: 'stopped', service: initial || '' };
    function field(name, label, attrs) {
      return el('label', null, label + ' ', el('input', Object.assign({ name, id: 'tap-' + name }, attrs)));
    }
    function query() {
      const f = $('#tap-form');
      const [name, ns] = f.service.value.trim().split('.');
      const q = new URLSearchParams({ namespace: ns || 'default' });
      for (const k of ['path', 'method', 'status']) if (f[k].value.trim()) q.set(k, f[k].value.trim());
      if (f.bodies.checked) q.set('bodies', 'true');
      return ['api/tap/' + encodeURIComponent(name) + '?' + q, name + '.' + (ns || 'default')];
    }
    function addRow(e) {
      const tbody = $('#tap-rows');
      if (!tbody) return;
      const status = e.status + (e.grpcStatus ? '/' + e.grpcStatus : '');
      const failed = e.status >= 500 || (e.grpcStatus && e.grpcStatus !== '0');
      const decisions = (e.decisions || []).map((d) => d.stage + (d.detail ? '=' + d.detail : '')).join(', ');
      const row = el('tr', { class: failed ? 'bad' : 'ok', 'data-path': e.path, 'data-side': e.side },
        el('td', null, new Date(e.time).toLocaleTimeString(undefined, { hour12: false }) + '.' + String(new Date(e.time).getMilliseconds()).padStart(3, '0')),
        el('td', null, e.side),
        el('td', null, short(e.source || '(plaintext)') + ' → ' + short(e.destination)),
        el('td', null, e.method), el('td', null, el('code', null, e.path)),
        el('td', { class: 'health num' }, status), el('td', { class: 'num' }, fmtMs(e.latencyMs)),
        el('td', null, e.route || ''), el('td', null, decisions));
      tbody.prepend(row);
      if (e.bodies) tbody.prepend(el('tr', { class: 'bodies' }, el('td', { colspan: 9 }, el('pre', null, '> ' + (e.bodies.request || '') + '\n< ' + (e.bodies.response || '')))));
      while (tbody.rows.length > TAP_ROWS) tbody.lastChild.remove();
      st.rows = tbody.rows.length;
    }
    function stop(reason) {
      if (st.abort) st.abort.abort();
      st.abort = null;
      st.state = 'stopped';
      $('#tap-start') && ($('#tap-start').disabled = false);
      $('#tap-stop') && ($('#tap-stop').disabled = true);
      if (reason) { $('#tap-state').textContent = reason; setStatus('tap ' + reason); }
    }
    async function start() {
      stop();
      const [path, svc] = query();
      const ac = new AbortController();
      st.abort = ac;
      st.state = 'connecting';
      $('#tap-start').disabled = true;
      $('#tap-stop').disabled = false;
      $('#tap-state').textContent = 'connecting to the proxies of ' + svc + '…';
      try {
        const r = await fetch(path, { credentials: 'same-origin', signal: ac.signal, headers: { Accept: 'text/event-stream' } });
        if (r.status === 401) { stop(); signedOut(); return; }
        if (!r.ok) { const b = await r.json().catch(() => ({})); stop('refused: ' + (b.error || r.statusText)); return; }
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const msg = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let type = 'message', data = '';
            for (const line of msg.split('\n')) {
              if (line.startsWith('event: ')) type = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (type === 'open') { st.state = 'live'; $('#tap-state').textContent = 'live: tapping ' + JSON.parse(data).proxies + ' proxies of ' + svc; setStatus('tap live'); }
            if (type === 'tap') { st.events++; addRow(JSON.parse(data)); }
            if (type === 'end') { stop('stopped: ' + JSON.parse(data).reason); return; }
          }
        }
        stop('stopped: the stream ended');
      } catch (e) {
        if (e.name !== 'AbortError') stop('stopped: ' + e.message);
      }
    }
    return {
      mount(main) {
        $('#verdicts').replaceChildren();
        const form = el('form', { id: 'tap-form', class: 'tap-form' },
          field('service', 'Service', { list: 'tap-services', placeholder: 'backend or backend.namespace', required: true, value: st.service }),
          field('path', 'Path prefix', { placeholder: '/api' }), field('method', 'Method', { placeholder: 'GET', size: 7 }),
          field('status', 'Status', { placeholder: '503 or 5xx', size: 8 }),
          el('label', { title: 'Only services annotated weft.dev/tap-bodies: "true" send bodies (redacted)' }, el('input', { type: 'checkbox', name: 'bodies', id: 'tap-bodies' }), ' bodies'),
          el('button', { type: 'submit', id: 'tap-start' }, 'Start'), el('button', { type: 'button', id: 'tap-stop', disabled: true }, 'Stop'),
          el('datalist', { id: 'tap-services' }));
        form.addEventListener('submit', (ev) => { ev.preventDefault(); start(); });
        form.querySelector('#tap-stop').addEventListener('click', () => stop('stopped'));
        main.replaceChildren(el('h1', null, 'Tap'), form, el('p', { id: 'tap-state', class: 'muted', 'aria-live': 'polite' }, 'Pick a service and start.'),
          el('table', { id: 'tap-table' }, el('thead', null, el('tr', null, ...['Time', 'Side', 'Source → destination', 'Method', 'Path', 'Status', 'Latency', 'Route', 'Decisions'].map((x) => el('th', null, x)))),
            el('tbody', { id: 'tap-rows' })));
        if (st.service) start();
      },
      unmount() { stop(); },
      async update() {
        const { proxies } = await api('api/proxies');
        const list = $('#tap-services');
        if (list) list.replaceChildren(...[...new Set(proxies.map((p) => p.service + '.' + p.namespace))].sort().map((s) => el('option', { value: s })));
        return st.state === 'live' ? `tap live · ${st.events} requests` : 'tap ' + st.state;
      },
      stats: st,
    };
  }

  // ---- demo: break and fix the demo's services ----
  async function demoButtons() {
    const box = $('#demo');
    let st;
    try { st = await api('api/demo'); } catch { return; }
    box.hidden = !st.enabled;
    box.replaceChildren(...st.breakable.map((s) => {
      const broken = st.broken.includes(s);
      const b = el('button', { class: 'danger', id: 'break-' + s, 'aria-pressed': String(broken) }, (broken ? 'fix ' : 'break ') + s);
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          await api('api/demo/break', { method: 'POST', body: JSON.stringify({ service: s, broken: !broken }) });
        } catch (e) { setStatus('demo: ' + e.message, true); }
        demoButtons();
      });
      return b;
    }));
  }

  // ---- router and polling ----
  function route() {
    const h = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
    if (h.startsWith('service/')) return ['graph', servicePage(h.slice(8))];
    if (h === 'proxies') return ['proxies', proxiesPage];
    if (h === 'tap' || h.startsWith('tap/')) return ['tap', tapPage(h.slice(4))];
    return ['graph', graphPage];
  }
  // refresh updates the current page, then polls again; a refresh that
  // another one (a navigation) overtook drops its result.
  async function refresh() {
    clearTimeout(state.timer);
    const gen = ++state.gen;
    try {
      const t0 = performance.now();
      const what = await state.page.update();
      if (gen !== state.gen) return;
      stats.updateMs = performance.now() - t0;
      setStatus(`${what} · updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (gen !== state.gen) return;
      if (e instanceof AuthError) { signedOut(); return; }
      setStatus(e.message, true);
    }
    state.timer = setTimeout(refresh, POLL_MS);
  }
  function navigate() {
    const [tab, page] = route();
    document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('active', a.dataset.page === tab));
    if (state.page && state.page.unmount) state.page.unmount();
    state.page = page;
    page.mount($('#main'));
    return refresh();
  }

  window.weftDashboard = { refresh: () => refresh(), stats, page: () => state.page };
  window.addEventListener('hashchange', () => { login().then(navigate); });
  (async () => {
    await login();
    await Promise.all([navigate(), demoButtons()]);
  })();
})();
