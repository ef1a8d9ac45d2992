import type { PolicyIssueInfo } from '@trellis/proto';
import { useRef } from 'react';

/** Offset of 1-based (line, column) in `text`, clamped to it. */
function offsetOf(text: string, line: number, column: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const next = text.indexOf('\n', offset);
    if (next < 0) return text.length;
    offset = next + 1;
  }
  return Math.min(text.length, offset + Math.max(0, column - 1));
}

/**
 * The policy file in a plain textarea with a gutter of line numbers (scrolled with it); a located
 * issue below it puts the cursor where it is when clicked. Read-only for members.
 */
export function PolicyEditor({
  text,
  readOnly,
  onChange,
  issues,
}: {
  text: string;
  readOnly: boolean;
  onChange(text: string): void;
  issues: readonly { kind: 'error' | 'warning'; issue: PolicyIssueInfo }[];
}) {
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLPreElement>(null);
  const lines = text.split('\n').length;
  const marked = new Set(issues.filter((i) => i.kind === 'error').map((i) => i.issue.line));
  const goTo = (issue: PolicyIssueInfo) => {
    const el = area.current;
    if (!el) return;
    const at = offsetOf(text, issue.line, issue.column);
    el.focus();
    el.setSelectionRange(at, at);
  };
  return (
    <div>
      <div className="editor">
        <pre className="gutter" ref={gutter} aria-hidden="true">
          {Array.from({ length: lines }, (_, i) => i + 1).map((n) => (
            <span key={n} className={marked.has(n) ? 'marked' : ''}>
              {n}
              {'\n'}
            </span>
          ))}
        </pre>
        <textarea
          ref={area}
          aria-label="Policy file"
          spellCheck={false}
          wrap="off"
          value={text}
          readOnly={readOnly}
          onChange={(e) => onChange(e.target.value)}
          onScroll={(e) => {
            if (gutter.current) gutter.current.scrollTop = e.currentTarget.scrollTop;
          }}
        />
      </div>
      {issues.length > 0 && (
        <ul className="issues" aria-label="Problems">
          {issues.map(({ kind, issue }) => (
            <li key={`${kind}-${issue.line}-${issue.column}-${issue.message}`} className={kind}>
              <button type="button" className="link" onClick={() => goTo(issue)}>
                {issue.line}:{issue.column}
              </button>{' '}
              {kind}: {issue.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
