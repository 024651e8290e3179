// Limits on password guessing. Attempts are counted when they start (so a
// burst of concurrent guesses cannot all reach bcrypt before the first
// failure is counted), and shaped so that an attacker cannot lock a user out:
//   - per (user, address): 10 failed or running attempts in a minute, then
//     that address waits for the rest of the minute before trying that user;
//   - per address: 50 failed attempts in a minute (or 100 running at once),
//     whatever the users;
//   - per user, from anywhere: after 20 failed attempts in a minute, that
//     user's logins are admitted one per second (a slower, global backoff,
//     not a lockout: the user still gets in, an attacker spread over many
//     addresses gets 60 guesses a minute).
// A success clears the pair. Credentials already verified, or being verified
// for another request, never come here (gate.ts).
import { LRUCache } from 'lru-cache'
import { TooManyRequests } from '../oci/errors.ts'
import { boundedCache } from '../common/bounded-cache.ts'

const WINDOW_MS = 60_000
const PER_PAIR = 10
const FAILED_PER_ADDRESS = 50
const RUNNING_PER_ADDRESS = 100
const PER_USER_BEFORE_BACKOFF = 20
const BACKOFF_MS = 1000

interface Count { failed: number, running: number, since: number, next: number }

export type Outcome = 'ok' | 'failed' | 'uncounted'

/** A login refused by the limits, with who was tried (for the audit log). */
export class LoginThrottled extends TooManyRequests {
  /** The user name tried ('' when there was none: a token or a replication secret). */
  readonly tried: string
  readonly busy: boolean
  constructor (tried: string, retryAfterSeconds: number, reason: string, busy = false) {
    super(String(retryAfterSeconds), { reason })
    this.tried = tried
    this.busy = busy
  }
}

export class LoginLimits {
  private readonly pairs = boundedCache<string, Count>(100_000, { ttl: WINDOW_MS })
  private readonly addresses = boundedCache<string, Count>(100_000, { ttl: WINDOW_MS })
  private readonly users = boundedCache<string, Count>(100_000, { ttl: WINDOW_MS })

  /**
   * Admit an attempt by `user` from `address` (throws LoginThrottled); tell
   * the returned function the outcome when it is known: 'ok' clears the
   * pair, 'failed' counts a failure, 'uncounted' (the check could not run)
   * counts nothing.
   */
  admit (user: string, address: string): (outcome: Outcome) => void {
    const now = Date.now()
    const pairKey = `${user}\n${address}`
    const pair = this.pairs.get(pairKey)
    if (pair !== undefined && pair.failed + pair.running >= PER_PAIR) throw new LoginThrottled(user, waitFor(pair, now), 'too many failed logins for this user from this address')
    this.checkAddress(address, now, user)
    const u = this.users.get(user)
    if (u !== undefined && u.failed >= PER_USER_BEFORE_BACKOFF) {
      if (now < u.next) throw new LoginThrottled(user, Math.max(1, Math.ceil((u.next - now) / 1000)), 'too many failed logins for this user: one attempt a second')
      u.next = now + BACKOFF_MS
    }
    const counts = [start(this.pairs, pairKey, now), start(this.addresses, address, now), start(this.users, user, now)]
    return outcome => {
      for (const c of counts) {
        c.running = Math.max(0, c.running - 1)
        if (outcome === 'failed') c.failed++
      }
      if (outcome === 'ok') this.pairs.delete(pairKey)
    }
  }

  /** An attempt that costs nothing to check (a replication secret, a token that is not ours): counted against the address only. */
  admitCheap (address: string, what: string): (outcome: Outcome) => void {
    const now = Date.now()
    this.checkAddress(address, now, '', what)
    const c = start(this.addresses, address, now)
    return outcome => {
      c.running = Math.max(0, c.running - 1)
      if (outcome === 'failed') c.failed++
    }
  }

  private checkAddress (address: string, now: number, user: string, what = 'passwords'): void {
    const addr = this.addresses.get(address)
    if (addr === undefined) return
    if (addr.failed >= FAILED_PER_ADDRESS) throw new LoginThrottled(user, waitFor(addr, now), `too many failed logins from this address (${what})`)
    if (addr.running >= RUNNING_PER_ADDRESS) throw new LoginThrottled(user, 1, 'too many logins at once from this address')
  }
}

function waitFor (c: Count, now: number): number {
  return Math.max(1, Math.ceil((c.since + WINDOW_MS - now) / 1000))
}

function start (cache: LRUCache<string, Count>, key: string, now: number): Count {
  let c = cache.get(key)
  if (c === undefined) {
    c = { failed: 0, running: 0, since: now, next: 0 }
    cache.set(key, c)
  }
  c.running++
  return c
}
