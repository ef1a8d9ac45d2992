/** The policy of a new account: every device may reach every other, as before policies existed. */
export const DEFAULT_POLICY_TEXT = `// Trellis access policy (JSON with comments). Rules only ever allow: what no rule allows is
// denied. Sections: groups, tagOwners, cidrs, associations, rules, tests.
{
  // Who may apply each tag besides the account owner, e.g. "tag:cams": ["group:ops"].
  "tagOwners": {},

  "rules": [
    // Every device may reach every other device, on every protocol and port.
    { "src": ["*"], "dst": ["*"] }
  ]
}
`;
