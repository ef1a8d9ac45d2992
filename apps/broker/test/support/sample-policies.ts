/** Policies over two tags that property tests switch between: allow-all, one port, a tag to itself. */
const TAGS = `"tagOwners": { "tag:eng": [], "tag:db": [] }`;
export const SAMPLE_POLICIES = [
  `{ ${TAGS}, "rules": [{ "src": ["*"], "dst": ["*"] }] }`,
  `{ ${TAGS}, "rules": [{ "src": ["tag:eng"], "dst": ["tag:db"], "ports": ["tcp:5432"] }] }`,
  `{ ${TAGS}, "rules": [{ "src": ["tag:eng"], "dst": ["tag:eng", "tag:db"], "ports": ["tcp:22"] }] }`,
];
/** The tags a device may have in them: none, or one of the two. */
export const SAMPLE_TAG_SETS: (string[] | undefined)[] = [undefined, ['tag:eng'], ['tag:db']];
