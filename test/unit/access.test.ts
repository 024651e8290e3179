// Access rules: who may do what where.
import t from 'tap'
import { AccessPolicy } from '../../src/auth/access.ts'
import type { Identity } from '../../src/auth/identity.ts'

const alice: Identity = { kind: 'user', name: 'alice', groups: ['devs'] }
const replicator: Identity = { kind: 'replicator', name: 'replicator', groups: [] }
const robot: Identity = { kind: 'robot', name: 'robot$ci', groups: [], scopes: [{ repositories: ['ci/**'], role: 'writer' }] }

t.test('deny by default; the first matching rule decides; groups and anonymous', async t => {
  const p = new AccessPolicy([
    { repositories: ['team-a/**'], allow: { 'group:devs': 'reader', 'user:alice': 'writer' } },
    { repositories: ['public/*'], allow: { anonymous: 'reader' } },
  ])
  t.same(p.actions(alice, 'team-a/app').sort(), ['pull', 'push'], 'user and group roles add up')
  t.same(p.actions(undefined, 'team-a/app'), [])
  t.same(p.actions(undefined, 'public/tool'), ['pull'])
  t.same(p.actions(alice, 'public/tool'), ['pull'], 'what anonymous may, a user may')
  t.same(p.actions(alice, 'other/thing'), [], 'no rule: nothing')
  t.same(p.actions(robot, 'team-a/app'), [], 'a robot is held to its own scope')
  t.same(p.actions(robot, 'ci/builder').sort(), ['pull', 'push'])
  t.same(p.actions(replicator, 'anything/at/all').sort(), ['delete', 'pull', 'push'], 'the replication credential, unbound: everywhere, deletes included (a rule may replicate them)')
})

t.test('the replication credential is a role like any other once a rule binds it', async t => {
  const p = new AccessPolicy([
    { repositories: ['mirrored/**'], allow: { replicator: 'writer' } },
    { repositories: ['**'], allow: { 'user:alice': 'reader' } },
  ])
  t.same(p.actions(replicator, 'mirrored/app').sort(), ['pull', 'push'])
  t.same(p.actions(replicator, 'private/app'), [], 'and nowhere else')
})
