// /readyz: whether this proxy can serve, that is whether the parts it needs
// answer (the region state, the blob store). /healthz says only that the
// process lives. Each check has a short timeout, and the answer is kept for
// two seconds, so probes cannot become a load of their own.
const KEEP_MS = 2000
const TIMEOUT_MS = 2000

export interface ReadinessCheck { readonly name: string, run (): Promise<void> }

export class Readiness {
  private readonly checks: readonly ReadinessCheck[]
  private last: { at: number, failing: string[] } | undefined
  private running: Promise<string[]> | undefined

  constructor (checks: readonly ReadinessCheck[]) { this.checks = checks }

  /** The checks that fail now (none: ready). */
  async failing (): Promise<string[]> {
    if (this.last !== undefined && Date.now() - this.last.at < KEEP_MS) return this.last.failing
    this.running ??= Promise.all(this.checks.map(async c => await withTimeout(c.run()).then(() => undefined, () => c.name)))
      .then(r => {
        const failing = r.filter((x): x is string => x !== undefined)
        this.last = { at: Date.now(), failing }
        return failing
      })
      .finally(() => { this.running = undefined })
    return await this.running
  }
}

async function withTimeout (p: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([p, new Promise<void>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('timed out')), TIMEOUT_MS) })])
  } finally {
    clearTimeout(timer)
  }
}
