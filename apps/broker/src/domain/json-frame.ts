/**
 * JSON text known to encode a `T`. Frames built once and sent to many devices (netmap peers, a
 * delta body shared by every viewer) are spliced from such pre-serialised parts instead of being
 * serialised again; the type parameter lets the compiler check each part against the field of the
 * proto message it goes into.
 */
export class Json<T> {
  /** Never set: ties the text to the type it encodes, so a Json<A> is no Json<B>. */
  declare private readonly encodes: T;

  private constructor(readonly text: string) {}

  static of<T>(value: T): Json<T> {
    return new Json<T>(JSON.stringify(value));
  }

  /** The JSON array of `items`, joined as they are. */
  static array<T>(items: readonly Json<T>[]): Json<T[]> {
    return new Json<T[]>(`[${items.map((i) => i.text).join(',')}]`);
  }
}

/** A message each of whose fields is given either as a value or as its pre-serialised JSON. */
export type Spliced<M> = { [K in keyof M]: M[K] | Json<M[K]> };

/**
 * The JSON text of `msg` as JSON.stringify would write it (fields in order, undefined ones left
 * out), with the Json parts spliced in unchanged. The message type must be spelled out
 * (`jsonFrame<NetmapMessage>({...})`; it is never inferred) so that every field is checked against proto.
 */
export function jsonFrame<M extends object = never>(msg: Spliced<NoInfer<M>>): string {
  // Concatenated, not joined: a large spliced part (a snapshot's peers) is not copied once more here.
  const fields: Readonly<Record<string, unknown>> = msg;
  let frame = '';
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined) continue;
    frame += `${frame === '' ? '{' : ','}${JSON.stringify(key)}:`;
    frame += value instanceof Json ? value.text : JSON.stringify(value);
  }
  return frame === '' ? '{}' : `${frame}}`;
}
