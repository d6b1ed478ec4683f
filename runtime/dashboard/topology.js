// The lab topology as SVG: a force-directed layout computed once, nodes coloured by state.

const SVG = "http://www.w3.org/2000/svg";
const W = 1000;
const H = 520;

function el(name, attrs = {}) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// A radial tree: BFS from the best-connected node, each subtree gets an angle in proportion
// to its leaves, each hop is a ring. Deterministic, and leaves spread round the outer ring.
function layout(nodes, links) {
  const adj = new Map(nodes.map((n) => [n.id, []]));
  for (const l of links) {
    if (adj.has(l.a) && adj.has(l.b)) { adj.get(l.a).push(l.b); adj.get(l.b).push(l.a); }
  }
  for (const list of adj.values()) list.sort();
  const byDegree = [...nodes].sort((a, b) => adj.get(b.id).length - adj.get(a.id).length || a.id.localeCompare(b.id));
  const children = new Map(nodes.map((n) => [n.id, []]));
  const depth = new Map();
  const root = byDegree[0]?.id;
  const queue = root ? [root] : [];
  if (root) depth.set(root, 0);
  const visit = (start) => {
    while (queue.length) {
      const id = queue.shift();
      for (const next of adj.get(id)) {
        if (depth.has(next)) continue;
        depth.set(next, depth.get(id) + 1);
        children.get(id).push(next);
        queue.push(next);
      }
    }
    return start;
  };
  visit(root);
  for (const n of nodes) { // islands hang off the root
    if (depth.has(n.id)) continue;
    depth.set(n.id, 1);
    children.get(root).push(n.id);
    queue.push(n.id);
    visit(n.id);
  }
  const leaves = new Map();
  const count = (id) => {
    const kids = children.get(id);
    const n = kids.length ? kids.reduce((s, k) => s + count(k), 0) : 1;
    leaves.set(id, n);
    return n;
  };
  if (root) count(root);
  const maxDepth = Math.max(1, ...depth.values());
  const ring = (Math.min(W, H) / 2 - 30) / maxDepth;
  const pos = new Map();
  const place = (id, a0, a1) => {
    const a = (a0 + a1) / 2;
    const r = depth.get(id) * ring;
    pos.set(id, { x: W / 2 + r * Math.cos(a) * (W / H) * 0.9, y: H / 2 + r * Math.sin(a) });
    let start = a0;
    for (const kid of children.get(id)) {
      const span = ((a1 - a0) * leaves.get(kid)) / leaves.get(id);
      place(kid, start, start + span);
      start += span;
    }
  };
  if (root) place(root, -Math.PI, Math.PI);
  // stretch the drawing to the whole view
  const all = [...pos.values()];
  const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const fit = (v, a, b, lo, hi) => (b - a < 1 ? (lo + hi) / 2 : lo + ((v - a) / (b - a)) * (hi - lo));
  return nodes.map((n) => {
    const p = pos.get(n.id);
    return { x: fit(p.x, x0, x1, 30, W - 90), y: fit(p.y, y0, y1, 20, H - 20) };
  });
}

export class Topology {
  constructor(svg, onSelect) {
    this.svg = svg;
    this.onSelect = onSelect;
    this.groups = new Map();
  }

  render(topology) {
    const nodes = [...topology.nodes].sort((a, b) => a.uns_path.localeCompare(b.uns_path));
    const pos = layout(nodes, topology.links);
    const at = new Map(nodes.map((node, i) => [node.id, pos[i]]));
    this.svg.textContent = "";
    const lines = el("g");
    for (const link of topology.links) {
      const a = at.get(link.a), b = at.get(link.b);
      if (!a || !b) continue;
      const line = el("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y });
      if (Object.keys(link.impairment || {}).length) line.classList.add("impaired");
      const title = el("title");
      title.textContent = `${link.a}:${link.a_interface} - ${link.b}:${link.b_interface}` +
        (link.label ? ` (${link.label})` : "");
      line.append(title);
      lines.append(line);
    }
    this.svg.append(lines);
    for (const node of nodes) {
      const p = at.get(node.id);
      const g = el("g", { transform: `translate(${p.x},${p.y})` });
      g.classList.add("node", node.twinned ? `state-${node.state || "unknown"}` : "infra");
      g.dataset.node = node.id;
      const circle = el("circle", { r: node.twinned ? 7 : 9 });
      const title = el("title");
      title.textContent = `${node.name} (${node.role})${node.twinned ? "" : " - not twinned"}`;
      circle.append(title);
      g.append(circle);
      if (!node.twinned || node.role.endsWith("switch") || node.role === "gateway") {
        const label = el("text", { x: 10, y: 3 }); // devices are named in their tooltip
        label.textContent = node.id;
        g.append(label);
      }
      if (node.twinned) g.addEventListener("click", () => this.onSelect(node.id));
      this.svg.append(g);
      this.groups.set(node.id, g);
    }
  }

  setState(id, state) {
    const g = this.groups.get(id);
    if (!g || g.classList.contains("infra")) return;
    for (const c of [...g.classList]) if (c.startsWith("state-")) g.classList.remove(c);
    g.classList.add(`state-${state || "unknown"}`);
  }

  select(id) {
    for (const g of this.groups.values()) g.classList.toggle("selected", g.dataset.node === id);
  }
}
