// The ISA-95 tree (enterprise / site / area / line / cell / twin), coloured by state.

const RANK = ["unknown", "healthy", "initializing", "maintenance", "offline", "degraded",
              "error", "critical"];
const STATES = RANK.map((s) => `state-${s}`);

function setState(el, state) {
  el.classList.remove(...STATES);
  el.classList.add(`state-${state}`);
}

export class Tree {
  constructor(root, { onSelectPath, onSelectTwin }) {
    this.root = root;
    this.onSelectPath = onSelectPath;
    this.onSelectTwin = onSelectTwin;
    this.nodes = new Map(); // path -> {el, label, children:Set(paths), twins:Set(ids)}
    this.twinEls = new Map(); // id -> node span
    this.twinPath = new Map(); // id -> list of ancestor paths
    this.states = new Map();
  }

  build(enterprise, levels, twins) {
    const names = new Map(levels.map((l) => [l.path, l.name]));
    this.root.textContent = "";
    this.nodes.clear();
    const top = this.addNode(this.root, enterprise, enterprise);
    for (const twin of twins) {
      const parts = twin.uns_path.split("/");
      let parent = top;
      const ancestors = [enterprise];
      for (let i = 2; i < parts.length; i++) {
        const path = parts.slice(0, i).join("/");
        if (parts[i - 1].startsWith("_")) continue; // a level the inventory leaves out
        let node = this.nodes.get(path);
        if (!node) node = this.addNode(parent.list, path, names.get(path) || parts[i - 1]);
        ancestors.push(path);
        parent = node;
      }
      const li = document.createElement("li");
      li.dataset.twin = twin.id;
      li.dataset.path = twin.uns_path;
      const span = this.label(twin.name || twin.id);
      span.title = twin.uns_path;
      span.addEventListener("click", (ev) => { ev.stopPropagation(); this.onSelectTwin(twin.id); });
      li.append(span);
      parent.list.append(li);
      this.twinEls.set(twin.id, span);
      this.twinPath.set(twin.id, ancestors);
      for (const p of ancestors) this.nodes.get(p).twins.add(twin.id);
      this.setTwinState(twin.id, twin.state);
    }
  }

  label(text) {
    const span = document.createElement("span");
    span.className = "node state-unknown";
    const dot = document.createElement("span");
    dot.className = "dot";
    span.append(dot, document.createTextNode(text));
    return span;
  }

  addNode(parentList, path, text) {
    const li = document.createElement("li");
    li.dataset.path = path;
    const span = this.label(text);
    span.addEventListener("click", (ev) => { ev.stopPropagation(); this.onSelectPath(path); });
    const list = document.createElement("ul");
    li.append(span, list);
    parentList.append(li);
    const node = { el: span, list, twins: new Set() };
    this.nodes.set(path, node);
    return node;
  }

  setTwinState(id, state) {
    state = state || "unknown";
    this.states.set(id, state);
    const el = this.twinEls.get(id);
    if (!el) return;
    setState(el, state);
    for (const path of this.twinPath.get(id) || []) this.refresh(path);
  }

  refresh(path) {
    const node = this.nodes.get(path);
    let worst = 0;
    for (const id of node.twins) worst = Math.max(worst, RANK.indexOf(this.states.get(id) || "unknown"));
    setState(node.el, RANK[worst]);
  }

  select(pathOrTwin) {
    for (const el of this.root.querySelectorAll(".selected")) el.classList.remove("selected");
    const el = this.twinEls.get(pathOrTwin) || this.nodes.get(pathOrTwin)?.el;
    if (el) el.classList.add("selected");
  }
}
