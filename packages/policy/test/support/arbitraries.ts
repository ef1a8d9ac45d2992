import fc from 'fast-check';

/** Every kind of selector the test policies' groups, tags and blocks give. */
export const selectorArb = fc.constantFrom(
  '*',
  'group:eng',
  'group:ops',
  'tag:db',
  'tag:web',
  'cidr:site-a',
  'cidr:site-b',
  'printer',
  'user:bob@acme.com',
);
