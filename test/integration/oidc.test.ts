// Users of an OpenID provider (oidc-provider, started by the test): a user
// signs in at the provider (authorization code flow with PKCE) and gives
// the ID token to `docker login` as the password. ferry checks it against
// the provider's keys: the right user pulls by their group; the token under
// another name, a token for another audience, a tampered token, and a
// token signed with another key get nobody in; dockerd logs in with the
// token and pulls.
import { generateKeyPairSync } from 'node:crypto'
import { SignJWT } from 'jose'
import t from 'tap'
import puppeteer from 'puppeteer-core'
import { startDockerd } from '../helpers/dockerd.ts'
import { startFerry, type Ferry } from '../helpers/ferry.ts'
import { get } from '../helpers/http.ts'
import { image, OCI_MANIFEST, pushImage, type Image } from '../helpers/images.ts'
import { startOidc, type Oidc } from '../helpers/oidc.ts'
import { freePort, scratchDir } from '../helpers/procs.ts'
import { startRegistry, type Registry } from '../helpers/registry.ts'
import { registerSecret } from '../helpers/secrets.ts'

let oidc: Oidc
let upstream: Registry
let ferry: Ferry
let teamA: Image

const basic = (user: string, password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`, accept: OCI_MANIFEST })

let port = 0
const callback = (): string => `http://127.0.0.1:${port}/_ferry/api/v1/session/oidc/callback`

t.before(async () => {
  port = await freePort()
  oidc = await startOidc({ alice: ['team-a'], bob: [] }, [callback()])
  registerSecret(oidc.clientSecret)
  upstream = await startRegistry()
  teamA = await image()
  await pushImage(upstream.url, 'team-a/app', 'v1', teamA)
  ferry = await startFerry({
    env: { OIDC_CLIENT_SECRET: oidc.clientSecret },
    config: {
      listen: `127.0.0.1:${port}`,
      upstreams: [{ name: 'up', url: upstream.url, default: true }],
      auth: { oidc: { issuer: oidc.issuer, audience: oidc.clientId, clientSecretEnv: 'OIDC_CLIENT_SECRET', redirectUri: callback() }, access: [{ repositories: ['team-a/**'], allow: { 'group:team-a': 'reader' } }] },
    },
  })
})
t.teardown(async () => { await ferry?.stop(); await upstream?.stop(); await oidc?.stop() })

const manifest = async (headers: Record<string, string>): ReturnType<typeof get> => await get(`${ferry.url}/v2/team-a/app/manifests/v1`, headers)

t.test('an ID token from the provider logs a user in, with their groups', async t => {
  const token = await oidc.idToken('alice')
  registerSecret(token)
  const ok = await manifest(basic('alice', token))
  t.equal(ok.status, 200, 'alice, in team-a by the token\'s groups, pulls')
  t.ok(ok.body.equals(teamA.manifest.bytes))
  const bobToken = await oidc.idToken('bob')
  registerSecret(bobToken)
  t.equal((await manifest(basic('bob', bobToken))).status, 403, 'bob, in no group the rules name: 403')
  t.equal((await manifest(basic('bob', token))).status, 401, 'alice\'s token under another name: 401')
})

t.test('tokens that are not this provider\'s, for this ferry, get nobody in', async t => {
  const token = await oidc.idToken('alice')
  registerSecret(token)
  const [h, p, s] = token.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, groups: ['team-a', 'admins'] })).toString('base64url')}.${s}`
  t.equal((await manifest(basic('alice', tampered))).status, 401, 'a tampered token: 401')
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const forged = await new SignJWT({ preferred_username: 'alice', groups: ['team-a'] }).setProtectedHeader({ alg: 'ES256', kid: 'forged' }).setIssuer(oidc.issuer).setAudience(oidc.clientId).setSubject('alice').setIssuedAt().setExpirationTime('5m').sign(privateKey)
  t.equal((await manifest(basic('alice', forged))).status, 401, 'a token signed with another key: 401')
  const otherAudience = await startFerry({ config: { upstreams: [{ name: 'up', url: upstream.url, default: true }], auth: { oidc: { issuer: oidc.issuer, audience: 'another-client' }, access: [{ repositories: ['team-a/**'], allow: { 'group:team-a': 'reader' } }] } } })
  t.teardown(() => otherAudience.stop())
  t.equal((await get(`${otherAudience.url}/v2/team-a/app/manifests/v1`, basic('alice', token))).status, 401, 'a token for another audience: 401')
})

t.test('docker login with the token, then docker pull', async t => {
  const token = await oidc.idToken('alice')
  registerSecret(token)
  const docker = await startDockerd([ferry.host])
  t.teardown(() => docker.stop())
  const login = await docker.docker(['login', '-u', 'alice', '--password-stdin', ferry.host], token)
  t.match(login, /Login Succeeded/)
  const pulled = await docker.docker(['pull', `${ferry.host}/team-a/app:v1`])
  t.match(pulled, teamA.manifest.digest, 'docker pulled it with the provider\'s token')
})

t.test('the console signs in through the provider (code flow with PKCE) in a real browser', async t => {
  const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, userDataDir: scratchDir('ferry-chromium-oidc-'), args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'] })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  await page.goto(`${ferry.url}/ui/`)
  await page.waitForSelector('[data-oidc]')
  await Promise.all([page.waitForNavigation(), page.click('[data-oidc]')])
  t.match(page.url(), oidc.issuer, 'the browser is at the provider')
  await page.waitForSelector('input[name=login]')
  await page.type('input[name=login]', 'alice')
  await page.type('input[name=password]', 'anything')
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')])
  // the provider asks for consent once
  if (await page.$('input[name=prompt][value=consent]') !== null) await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')])
  await page.waitForSelector('[data-user="alice"]', { timeout: 15_000 })
  t.equal(new URL(page.url()).origin, ferry.url, 'back at the console')
  const repos = await page.evaluate(async () => await (await fetch('/_ferry/api/v1/repositories')).json()) as { repositories: { name: string }[] }
  t.same(repos.repositories.map(r => r.name), ['team-a/app'], 'signed in as alice, with her group')
  const forged = await get(`${ferry.url}/_ferry/api/v1/session/oidc/callback?code=abc&state=guessed`)
  t.equal(forged.status, 403, 'a callback that no sign-in here started: 403')
})
