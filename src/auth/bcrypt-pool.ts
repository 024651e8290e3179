// bcrypt off the event loop. A comparison costs tens of milliseconds of CPU
// by design; on the main thread a burst of logins (or of guesses) stalls
// every pull and even SIGTERM. Comparisons run in a small pool of worker
// threads (piscina), started on the first login and stopped when idle; a
// full queue is refused at once (AuthBusy, answered 429) rather than grown.
import { availableParallelism } from 'node:os'
import { Piscina } from 'piscina'

/** The pool's queue is full: the caller answers 429 and the client retries. */
export class AuthBusy extends Error {
  readonly code = 'AUTH_BUSY'
  constructor () { super('too many password checks waiting') }
}

/** Comparisons waiting for a thread, at most; past it, AuthBusy. */
const MAX_QUEUE = 64
/** A hash of the usual cost, compared when the user is unknown, so an unknown user takes as long as a wrong password. */
export const DUMMY_HASH = '$2b$10$dDty912TgJtb4u/jAWoOxu1XZU5Jm9NvYSiASL34Ap6U9/ujUXB/u'

let pool: Piscina | undefined
let closed = false

function threads (): Piscina {
  if (closed) throw new AuthBusy()
  // the worker's own file, as built (.js) or as the tests run it (.ts)
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
  pool ??= new Piscina({
    filename: new URL(`./bcrypt-worker${ext}`, import.meta.url).href,
    minThreads: 0,
    maxThreads: Math.max(1, Math.min(4, availableParallelism() - 1)),
    maxQueue: MAX_QUEUE,
    idleTimeout: 60_000,
    resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
  })
  return pool
}

let counted: () => void = () => {}
/** Told of every comparison that runs (for a metric). */
export function onBcryptCompare (count: () => void): void { counted = count }

export async function bcryptCompare (password: string, hash: string): Promise<boolean> {
  try {
    const p = threads().run({ password, hash }) as Promise<boolean>
    counted()
    return await p
  } catch (err) {
    // a full queue, or the pool stopped under a check (the process is stopping): the client tries again later
    if (closed || err instanceof AuthBusy || /queue is at limit/i.test((err as Error).message)) throw new AuthBusy()
    throw err
  }
}

/** Stop: checks waiting or running are refused (AuthBusy), and none start any more. */
export async function closeBcryptPool (): Promise<void> {
  closed = true
  const p = pool
  pool = undefined
  await p?.destroy()
}
