/** Where each node is drawn, in the picture's own units (a square of `size`). */
export interface Placed {
  id: string;
  x: number;
  y: number;
}

export interface LayoutInput {
  id: string;
}

/** Slots on the circle: at least twice the nodes (a power of two), so most keep their own slot. */
export function slotCount(nodes: number): number {
  let slots = 8;
  while (slots < 2 * nodes) slots *= 2;
  return slots;
}

/** FNV-1a of the id: where a device's slot is, whatever other devices there are. */
function hash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Nodes on a circle, each in the slot its id hashes to (the next free one when taken, ids in
 * order): a device keeps its place while others come and go (until their number doubles the
 * slots), and a path or online change never moves anything.
 */
export function circleLayout(nodes: readonly LayoutInput[]): { size: number; placed: Map<string, Placed> } {
  const slots = slotCount(nodes.length);
  // About 60 units of arc per slot, at least a circle of radius 160.
  const radius = Math.max(160, (slots * 60) / (2 * Math.PI));
  const margin = 110;
  const size = 2 * (radius + margin);
  const c = size / 2;
  const taken = new Set<number>();
  const placed = new Map<string, Placed>();
  for (const node of [...nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    let slot = hash(node.id) % slots;
    while (taken.has(slot)) slot = (slot + 1) % slots;
    taken.add(slot);
    // From the top, clockwise.
    const angle = -Math.PI / 2 + (2 * Math.PI * slot) / slots;
    const x = Math.round((c + radius * Math.cos(angle)) * 10) / 10;
    const y = Math.round((c + radius * Math.sin(angle)) * 10) / 10;
    placed.set(node.id, { id: node.id, x, y });
  }
  return { size, placed };
}
