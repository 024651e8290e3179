// One contract for every IdentitySource: users in the region file, an
// htpasswd file, robot accounts in the region state, and the chain of them
// the gate asks. The right secret proves the identity (with its groups or
// scope); a wrong one, an unknown user or any junk proves nothing, and
// nothing a client can send makes a source throw.
import { writeFileSync } from 'node:fs'

import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { pino } from 'pino'
import t from 'tap'
import { HtpasswdSource, StaticUsers, type IdentitySource } from '../../src/auth/identity.ts'
import { createRobot, IdentitySources, RobotSource } from '../../src/auth/robots.ts'
import { embeddedState } from '../../src/state/embedded/index.ts'
import { scratchDir } from '../helpers/procs.ts'

const dir = scratchDir('ferry-identity-')
const groups = { team: ['alice'] }

interface Subject {
  readonly source: IdentitySource
  /** A user the source knows and the secret that proves it. */
  readonly user: string
  readonly secret: string
  readonly kind: 'user' | 'robot'
  readonly groups: readonly string[]
}

const subjects: Record<string, () => Promise<Subject>> = {
  'users in the region file': async () => ({
    source: new StaticUsers({ alice: bcrypt.hashSync('alice-secret', 4) }, groups), user: 'alice', secret: 'alice-secret', kind: 'user', groups: ['team'],
  }),
  'an htpasswd file': async () => {
    const file = join(dir, 'htpasswd')
    writeFileSync(file, `# comment\nalice:${bcrypt.hashSync('alice-secret', 4)}\nmd5user:$apr1$abc$def\n\nbroken-line\n`)
    return { source: new HtpasswdSource(file, groups, pino({ level: 'silent' })), user: 'alice', secret: 'alice-secret', kind: 'user', groups: ['team'] }
  },
  'robot accounts': async () => {
    const state = embeddedState(join(dir, 'state'))
    const created = await createRobot(state, 'ci', [{ repositories: ['acme/**'], role: 'writer' }], undefined)
    return { source: new RobotSource(state), user: created.user, secret: created.secret, kind: 'robot', groups: [] }
  },
  'the chain the gate asks': async () => {
    const state = embeddedState(join(dir, 'chain-state'))
    return {
      source: new IdentitySources([new RobotSource(state), new StaticUsers({ alice: bcrypt.hashSync('alice-secret', 4) }, groups)]),
      user: 'alice', secret: 'alice-secret', kind: 'user', groups: ['team'],
    }
  },
}

const JUNK: [string, string][] = [
  ['', ''], ['alice', ''], ['', 'alice-secret'], ['alice\u0000', 'alice-secret'], ['ALICE', 'alice-secret'],
  ['alice', 'alice-secret\u0000'], ['alice', 'x'.repeat(100_000)], ['x'.repeat(10_000), 'y'], ['robot$', ''], ['robot$nope', 'z'],
  ['md5user', 'anything'], ['broken-line', ''], ['alice:alice-secret', ''], ['✓', '✓'],
]

for (const [name, make] of Object.entries(subjects)) {
  t.test(name, async t => {
    const s = await make()
    const who = await s.source.verify(s.user, s.secret)
    t.ok(who, 'the right secret proves the identity')
    t.equal(who?.name, s.user)
    t.equal(who?.kind, s.kind)
    t.same(who?.groups, s.groups, 'with its groups')
    if (s.kind === 'robot') t.same(who?.scopes, [{ repositories: ['acme/**'], role: 'writer' }], 'a robot with its own scope')
    t.same(await s.source.verify(s.user, s.secret), who, 'again, the same (remembered or checked again)')
    t.equal(await s.source.verify(s.user, `${s.secret}x`), undefined, 'a wrong secret proves nothing')
    t.equal(await s.source.verify(s.user, s.secret.slice(0, -1)), undefined, 'nor a prefix of the right one')
    t.equal(await s.source.verify('mallory', s.secret), undefined, 'an unknown user proves nothing')
    for (const [user, password] of JUNK) {
      t.equal(await s.source.verify(user, password), undefined, `junk is no identity and no error: ${JSON.stringify(user.slice(0, 12))}`)
    }
  })
}

t.test('a revoked robot proves nothing, even with its secret', async t => {
  const state = embeddedState(join(dir, 'revoke-state'))
  const source = new RobotSource(state)
  const created = await createRobot(state, 'deployer', [{ repositories: ['**'], role: 'reader' }], undefined)
  t.ok(await source.verify(created.user, created.secret))
  await state.robots.replace((await state.robots.list()).map(r => ({ ...r, revokedAt: Date.now() })))
  t.equal(await source.verify(created.user, created.secret), undefined)
})
