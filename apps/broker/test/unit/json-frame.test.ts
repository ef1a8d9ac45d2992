import { Json, jsonFrame } from '../../src/domain/json-frame';

interface Message {
  type: 'm';
  serial: number;
  items: Array<{ id: string; tags: string[] }>;
  note?: string;
  extra?: { deep: boolean[] } | null;
}

describe('jsonFrame', () => {
  const items = [
    { id: 'a"quoted"', tags: ['x', 'ü\n'] },
    { id: 'b', tags: [] },
  ];

  it('writes what JSON.stringify writes, splicing pre-serialised parts unchanged', () => {
    const whole: Message = { type: 'm', serial: 3, items, note: undefined, extra: null };
    const spliced = jsonFrame<Message>({
      type: 'm',
      serial: 3,
      items: Json.array(items.map((i) => Json.of(i))),
      note: undefined,
      extra: null,
    });
    expect(spliced).toBe(JSON.stringify(whole));
  });

  it('keeps the order of the fields as written, and takes a whole field as Json', () => {
    const extra = Json.of({ deep: [true, false] });
    expect(jsonFrame<Message>({ serial: 1, type: 'm', extra, items: [] })).toBe(
      '{"serial":1,"type":"m","extra":{"deep":[true,false]},"items":[]}',
    );
  });

  it('an empty array of parts is an empty JSON array', () => {
    expect(Json.array([]).text).toBe('[]');
    expect(JSON.parse(jsonFrame<Message>({ type: 'm', serial: 0, items: Json.array([]) }))).toEqual({
      type: 'm',
      serial: 0,
      items: [],
    });
  });
});
