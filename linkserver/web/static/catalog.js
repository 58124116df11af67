// What the page knows of the tree: the visible tree (for completion and the tree view) and
// each context's definitions (GET /contexts/PATH), fetched once per path and shared.

const MAX_CONTEXTS = 5000;

export class Catalog {
  constructor(api) {
    this.api = api;
    this.contexts = new Map(); // path -> Promise<{..., byName: Map}>
    this.known = new Map(); // path -> resolved answer (for synchronous lookups)
    this.tree = null;
    this.paths = [];
  }

  async loadTree() {
    this.tree = await this.api.call("GET", "/tree");
    const paths = [];
    const walk = (node) => {
      paths.push(node.path);
      for (const child of node.children || []) walk(child);
    };
    walk(this.tree);
    this.paths = paths;
    return this.tree;
  }

  context(path) {
    let pending = this.contexts.get(path);
    if (!pending) {
      if (this.contexts.size >= MAX_CONTEXTS) {
        const oldest = this.contexts.keys().next().value;
        this.contexts.delete(oldest);
        this.known.delete(oldest);
      }
      pending = this.api
        .call("GET", `/contexts/${encodeURIComponent(path === "" ? "root" : path)}`)
        .then((answer) => {
          answer.byName = new Map(answer.events.map((d) => [d.name, d]));
          this.known.set(path, answer);
          return answer;
        });
      pending.catch(() => this.contexts.delete(path));
      this.contexts.set(path, pending);
    }
    return pending;
  }

  async definition(path, name) {
    try {
      return (await this.context(path)).byName.get(name) || null;
    } catch {
      return null; // removed since, or not visible
    }
  }

  // The definition if already known, else undefined (and it is being fetched).
  definitionNow(path, name) {
    const known = this.known.get(path);
    if (known) return known.byName.get(name) || null;
    this.context(path).catch(() => {});
    return undefined;
  }

  // Completion for the mask field: each path, and its subtree masks.
  maskSuggestions() {
    const out = new Set(["**"]);
    for (const path of this.paths) {
      if (path === "") continue;
      out.add(path);
      out.add(`${path}.*`);
      out.add(`${path}.**`);
    }
    return [...out].slice(0, 2000);
  }
}
