// Buffers that arrive from sockets die young, but V8 does not collect them
// young: each is an ArrayBuffer outside the heap, a stream of them at wire
// speed raises the external-memory figure that starts a full mark-compact
// (measured: 38 full GCs over three cold 512 MiB pulls, their marking a
// fifth of the process's CPU samples, and peak RSS 206 MiB). A scavenge frees
// those that died, costs well under a millisecond when little is alive, and
// keeps the full GCs away; so a fill asks for one each time this much has
// arrived. The young generation stays as large as the small-image load
// wants it (--max-semi-space-size=16); shrinking it instead cost that load
// a third of its rate.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

const EVERY = 8 * 1024 * 1024

type Gc = (opts: { type: 'minor' | 'major', execution?: 'sync' | 'async' }) => void

function exposeGc (): Gc | undefined {
  try {
    setFlagsFromString('--expose-gc')
    return runInNewContext('gc') as Gc
  } catch {
    return undefined
  }
}

const gc = exposeGc()
let since = 0

/** `bytes` more arrived in fresh buffers; collects the young generation now and then. */
export function arrived (bytes: number): void {
  since += bytes
  if (since < EVERY || gc === undefined) return
  since = 0
  gc({ type: 'minor' })
}
