import type { ReactNode } from 'react';

/** A failed call's message, announced to screen readers; nothing without one. */
export function ErrorLine({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {error}
    </p>
  );
}

/** A list table: its column titles (an empty title for a column of buttons), then its rows. */
export function ListTable({ columns, children }: { columns: readonly string[]; children: ReactNode }) {
  return (
    <table className="list">
      <thead>
        <tr>
          {columns.map((c, i) => (
            <th key={c || `column-${i}`}>{c}</th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}
