/**
 * The steps of a lab scenario whose tests build on each other: a test names the step it needs, so
 * a failure upstream reads as "not run" downstream instead of as a second, misleading failure.
 */
export class Steps {
  private readonly done = new Set<string>();

  complete(step: string): void {
    this.done.add(step);
  }

  needs(step: string): void {
    if (!this.done.has(step)) throw new Error(`not run: the earlier step "${step}" did not complete`);
  }
}
