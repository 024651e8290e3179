// Robot accounts: named credentials for automation, `robot$<name>` as the
// user name, with their own scope (repository patterns and a role) and an
// optional expiry. Kept in the region state, so every proxy of a region
// knows them; looked up on every login, so a revoked or expired robot is
// refused at once. `ferry robot create|list|revoke` manages them.
import { createHash, randomBytes } from 'node:crypto'
import bcrypt from 'bcryptjs'
import type { RegionState, RobotRecord } from '../state/region-state.ts'
import { bcryptCompare, DUMMY_HASH } from './bcrypt-pool.ts'
import type { Identity, IdentitySource } from './identity.ts'
import { boundedCache } from '../common/bounded-cache.ts'

export const ROBOT_PREFIX = 'robot$'
export { ROBOT_NAME } from './robot-name.ts'

export class RobotSource implements IdentitySource {
  private readonly state: RegionState
  /** bcrypt verdicts by a hash of (record hash, password): revocation is checked before, every time. */
  private readonly verified = boundedCache<string, true>(10_000, { ttl: 10 * 60_000 })

  constructor (state: RegionState) { this.state = state }

  /** The robot, if it exists, is not revoked and has not expired. */
  async valid (user: string): Promise<RobotRecord | undefined> {
    if (!user.startsWith(ROBOT_PREFIX)) return undefined
    const name = user.slice(ROBOT_PREFIX.length)
    const r = (await this.state.robots.list()).find(x => x.name === name)
    if (r === undefined || r.revokedAt !== undefined || (r.expiresAt !== undefined && r.expiresAt <= Date.now())) return undefined
    return r
  }

  async knows (user: string): Promise<boolean> {
    return await this.valid(user) !== undefined
  }

  async verify (user: string, password: string): Promise<Identity | undefined> {
    const r = await this.valid(user)
    if (r === undefined) return undefined
    const key = createHash('sha256').update(`${r.hash}\u0000${password}`).digest('hex')
    if (this.verified.get(key) === undefined) {
      if (!await bcryptCompare(password, r.hash)) return undefined
      this.verified.set(key, true)
    }
    return { kind: 'robot', name: `${ROBOT_PREFIX}${r.name}`, groups: [], scopes: r.scopes }
  }
}

/**
 * Tries each source in turn. A user no source knows costs one comparison
 * against a dummy hash, as a wrong password does, so the time an answer
 * takes does not tell which user names exist.
 */
export class IdentitySources implements IdentitySource {
  private readonly sources: readonly IdentitySource[]
  constructor (sources: readonly IdentitySource[]) { this.sources = sources }
  async verify (user: string, password: string): Promise<Identity | undefined> {
    for (const s of this.sources) {
      const who = await s.verify(user, password)
      if (who !== undefined) return who
    }
    if (!await this.knows(user)) await bcryptCompare(password, DUMMY_HASH)
    return undefined
  }

  async knows (user: string): Promise<boolean> {
    for (const s of this.sources) if (await s.knows(user)) return true
    return false
  }
}

/** A new robot and its secret (shown once; only its hash is kept). */
export async function createRobot (state: RegionState, name: string, scopes: RobotRecord['scopes'], expiresAt: number | undefined): Promise<{ user: string, secret: string }> {
  const robots = await state.robots.list()
  if (robots.some(r => r.name === name && r.revokedAt === undefined)) throw new Error(`robot ${name} exists; revoke it first`)
  const secret = randomBytes(32).toString('base64url')
  const record: RobotRecord = { name, hash: await bcrypt.hash(secret, 10), scopes, createdAt: Date.now(), expiresAt, revokedAt: undefined }
  await state.robots.replace([...robots.filter(r => r.name !== name), record])
  return { user: `${ROBOT_PREFIX}${name}`, secret }
}

export async function revokeRobot (state: RegionState, name: string): Promise<boolean> {
  const robots = await state.robots.list()
  const r = robots.find(x => x.name === name && x.revokedAt === undefined)
  if (r === undefined) return false
  await state.robots.replace(robots.map(x => x === r ? { ...x, revokedAt: Date.now() } : x))
  return true
}
