import { CandidateWatcher } from '../src/platform/candidates';

describe('CandidateWatcher', () => {
  it('re-reads at once on a network event, not at the next poll, and reports only changes', () => {
    let current = ['10.0.0.10:51820'];
    const reports: string[][] = [];
    let fire: (() => void) | null = null;
    let stopped = false;
    const w = new CandidateWatcher(
      () => current,
      (c) => reports.push(c),
      3_600_000,
      (onChange) => {
        fire = onChange;
        return () => {
          stopped = true;
        };
      },
    );
    w.start();
    expect(reports).toEqual([['10.0.0.10:51820']]);
    current = ['10.0.0.10:51820', '192.168.5.7:51820'];
    fire!();
    expect(reports).toEqual([['10.0.0.10:51820'], ['10.0.0.10:51820', '192.168.5.7:51820']]);
    fire!(); // an event that changed nothing we use
    expect(reports).toHaveLength(2);
    w.stop();
    expect(stopped).toBe(true);
  });
});
