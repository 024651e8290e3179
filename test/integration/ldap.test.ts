// Users from a directory: Debian's slapd with a database of the test's own.
// A user binds with their directory password (Basic and the console),
// their groups come from a group search and access rules name them; a
// wrong or empty password, and user names that try to rewrite the search
// filter, get nobody in; a directory that is down is a 503, not a wrong
// password, while local users still log in.
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { image, OCI_MANIFEST, pushImage, type Image } from '../helpers/images.ts'
import { scratchDir } from '../helpers/procs.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { registerSecret } from '../helpers/secrets.ts'
import { startSlapd, type Slapd } from '../helpers/slapd.ts'

const ADMIN = `admin-${randomBytes(8).toString('hex')}`
const ALICE = `alice-${randomBytes(8).toString('hex')}`
const BOB = `bob-${randomBytes(8).toString('hex')}`
const LOCAL = 'local-Ops-Passw0rd'
const dir = scratchDir('ferry-ldap-')
let slapd: Slapd
let upstream: Registry
let ferry: Ferry
let teamA: Image

const basic = (user: string, password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`, accept: OCI_MANIFEST })

t.before(async () => {
  registerSecret(ADMIN, ALICE, BOB, LOCAL)
  const s = 'dc=example,dc=org'
  slapd = await startSlapd([
    `dn: ${s}`, 'objectClass: dcObject', 'objectClass: organization', 'dc: example', 'o: Example', '',
    `dn: ou=people,${s}`, 'objectClass: organizationalUnit', 'ou: people', '',
    `dn: ou=groups,${s}`, 'objectClass: organizationalUnit', 'ou: groups', '',
    `dn: uid=alice,ou=people,${s}`, 'objectClass: inetOrgPerson', 'uid: alice', 'cn: Alice', 'sn: A', `userPassword: ${ALICE}`, '',
    // bob's groups are DNs in an attribute of his own entry, as Active Directory's memberOf
    `dn: uid=bob,ou=people,${s}`, 'objectClass: inetOrgPerson', 'uid: bob', 'cn: Bob', 'sn: B', `userPassword: ${BOB}`, `seeAlso: cn=team-b,ou=groups,${s}`, '',
    `dn: cn=team-a,ou=groups,${s}`, 'objectClass: groupOfNames', 'cn: team-a', `member: uid=alice,ou=people,${s}`, '',
  ].join('\n') + '\n', ADMIN)
  upstream = await startRegistry()
  teamA = await image()
  await pushImage(upstream.url, 'team-a/app', 'v1', teamA)
  writeFileSync(join(dir, 'htpasswd'), `ops:${bcrypt.hashSync(LOCAL, 8)}\n`)
  ferry = await startFerry({
    env: { LDAP_BIND_PASSWORD: ADMIN },
    config: {
      upstreams: [{ name: 'up', url: upstream.url, default: true }],
      auth: {
        htpasswd: join(dir, 'htpasswd'),
        ldap: {
          url: slapd.url,
          bindDN: slapd.adminDN,
          bindPasswordEnv: 'LDAP_BIND_PASSWORD',
          userBase: `ou=people,${s}`,
          userFilter: '(uid={user})',
          groupSearch: { base: `ou=groups,${s}`, filter: '(member={dn})', nameAttribute: 'cn' },
          cacheTTL: '1s',
          timeout: '2s',
        },
        access: [
          { repositories: ['team-a/**'], allow: { 'group:team-a': 'reader', 'user:ops': 'reader' } },
        ],
      },
    },
  })
})
t.teardown(async () => { await ferry?.stop(); await slapd?.stop(); await upstream?.stop() })

const manifest = async (headers: Record<string, string>): ReturnType<typeof get> => await get(`${ferry.url}/v2/team-a/app/manifests/v1`, headers)

t.test('a directory user pulls by their group', async t => {
  const ok = await manifest(basic('alice', ALICE))
  t.equal(ok.status, 200, 'alice, in team-a, pulls team-a')
  t.ok(ok.body.equals(teamA.manifest.bytes))
  const bob = await manifest(basic('bob', BOB))
  t.equal(bob.status, 403, 'bob, in no group the rules name, is denied')
})

t.test('groups from an attribute of the user\'s entry (memberOf in Active Directory)', async t => {
  const byAttribute = await startFerry({
    env: { LDAP_BIND_PASSWORD: ADMIN },
    config: {
      upstreams: [{ name: 'up', url: upstream.url, default: true }],
      auth: {
        ldap: { url: slapd.url, bindDN: slapd.adminDN, bindPasswordEnv: 'LDAP_BIND_PASSWORD', userBase: 'ou=people,dc=example,dc=org', groupAttribute: 'seeAlso', timeout: '2s' },
        access: [{ repositories: ['team-a/**'], allow: { 'group:team-b': 'reader' } }],
      },
    },
  })
  t.teardown(() => byAttribute.stop())
  t.equal((await get(`${byAttribute.url}/v2/team-a/app/manifests/v1`, basic('bob', BOB))).status, 200, 'bob is in team-b by the DN in his entry')
  t.equal((await get(`${byAttribute.url}/v2/team-a/app/manifests/v1`, basic('alice', ALICE))).status, 403, 'alice is not')
})

t.test('wrong and empty passwords, and names that rewrite the filter, get nobody in', async t => {
  t.equal((await manifest(basic('alice', 'wrong'))).status, 401, 'a wrong password')
  t.equal((await manifest(basic('alice', ''))).status, 401, 'an empty password (an unauthenticated bind would succeed)')
  for (const name of ['*', 'al*', 'alice)(uid=*', '*)(|(uid=*', 'bob)(member=*']) {
    t.equal((await manifest(basic(name, ALICE))).status, 401, `user ${JSON.stringify(name)}: 401`)
  }
  t.equal((await manifest(basic('nobody', ALICE))).status, 401, 'a user the directory does not have')
})

t.test('the console takes directory users too', async t => {
  const res = await fetch(`${ferry.url}/_ferry/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: ALICE }) })
  t.equal(res.status, 200)
  const cookie = res.headers.getSetCookie().map(c => c.split(';')[0]).join('; ')
  const repos = (await get(`${ferry.url}/_ferry/api/v1/repositories`, { cookie })).json<{ repositories: { name: string }[] }>()
  t.same(repos.repositories.map(r => r.name), ['team-a/app'], 'she sees what her group may pull')
})

t.test('StartTLS, verified against the CA file', async t => {
  const secure = await startSlapd([
    'dn: dc=example,dc=org', 'objectClass: dcObject', 'objectClass: organization', 'dc: example', 'o: Example', '',
    'dn: ou=people,dc=example,dc=org', 'objectClass: organizationalUnit', 'ou: people', '',
    'dn: uid=carol,ou=people,dc=example,dc=org', 'objectClass: inetOrgPerson', 'uid: carol', 'cn: Carol', 'sn: C', `userPassword: ${BOB}`, '',
  ].join('\n') + '\n', ADMIN, { tls: true })
  t.teardown(() => secure.stop())
  const ldap = (caFile: string | undefined): Record<string, unknown> => ({
    url: secure.url, startTLS: true, ...(caFile !== undefined ? { caFile } : {}), bindDN: secure.adminDN, bindPasswordEnv: 'LDAP_BIND_PASSWORD',
    userBase: 'ou=people,dc=example,dc=org', timeout: '2s',
  })
  const config = (caFile: string | undefined): Record<string, unknown> => ({
    upstreams: [{ name: 'up', url: upstream.url, default: true }],
    auth: { ldap: ldap(caFile), access: [{ repositories: ['team-a/**'], allow: { 'user:carol': 'reader' } }] },
  })
  const trusted = await startFerry({ env: { LDAP_BIND_PASSWORD: ADMIN }, config: config(secure.caFile) })
  t.teardown(() => trusted.stop())
  const ok = await get(`${trusted.url}/v2/team-a/app/manifests/v1`, basic('carol', BOB))
  t.equal(ok.status, 200, 'carol logs in over StartTLS'); if (ok.status !== 200) t.comment(JSON.stringify(trusted.logs().filter(l => String(l.msg).includes('LDAP'))))
  const untrusted = await startFerry({ env: { LDAP_BIND_PASSWORD: ADMIN }, config: config(undefined) })
  t.teardown(() => untrusted.stop())
  const refused = await get(`${untrusted.url}/v2/team-a/app/manifests/v1`, basic('carol', BOB))
  t.equal(refused.status, 503, 'a certificate the node does not trust: no login (and no password sent in clear)')
})

t.test('a directory that is down: 503 for its users, local users still log in', async t => {
  await slapd.stop()
  await new Promise(resolve => setTimeout(resolve, 1100)) // past cacheTTL and the gate's memory of alice's login? (the gate keeps a minute: use bob, never let in)
  const down = await manifest(basic('bob', `${BOB}-x`))
  t.equal(down.status, 503, 'the directory is unavailable, and ferry says so')
  t.match(down.body.toString(), /directory/)
  t.equal((await manifest(basic('ops', LOCAL))).status, 200, 'an htpasswd user is not held up')
})
