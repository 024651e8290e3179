// HTTPS upstreams: a private CA trusted per upstream (caFile), or no
// verification at all (insecure), and refusal without either. And ferry
// serving HTTPS itself, with a certificate renewed on disk, and the token
// flow over it with skopeo and containerd.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'

import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import t from 'tap'
import { startContainerd } from '../helpers/containerd.ts'
import { startFerry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { image, pushImage } from '../helpers/images.ts'
import { requireBinary, startRegistry } from '../helpers/registry.ts'
import { registerSecret } from '../helpers/secrets.ts'
import { scratchDir } from '../helpers/procs.ts'

const TOKEN_PASSWORD = 'alice-Tls-token-1'

t.test('an HTTPS upstream with a private CA', async t => {
  requireBinary('openssl', 'openssl')
  const dir = scratchDir('ferry-tls-')
  const sh = (args: string[]): void => { execFileSync('openssl', args, { stdio: 'ignore' }) }
  sh(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-days', '1', '-subj', '/CN=ferry test CA'])
  sh(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr'), '-subj', '/CN=127.0.0.1'])
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
  sh(['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-out', join(dir, 'server.pem'), '-days', '1', '-extfile', join(dir, 'ext.cnf')])

  // seed over plain HTTP, then serve the same storage over TLS
  const plain = await startRegistry()
  const img = await image()
  await pushImage(plain.url, 'tls/app', 'v1', img)
  await plain.stop()
  const secure = await startRegistry({ dir: plain.dir, tls: { certificate: join(dir, 'server.pem'), key: join(dir, 'server.key') } })
  t.teardown(() => secure.stop())
  const https = `https://127.0.0.1:${secure.port}`
  const accept = { accept: img.manifest.mediaType }

  const trusted = await startFerry({ config: { upstreams: [{ name: 'tls', url: https, default: true, caFile: join(dir, 'ca.pem') }] } })
  t.teardown(() => trusted.stop())
  const ok = await get(`${trusted.url}/v2/tls/app/manifests/v1`, accept)
  t.equal(ok.status, 200, 'trusted through caFile')
  t.equal(ok.header('docker-content-digest'), img.manifest.digest)

  const untrusted = await startFerry({ config: { upstreams: [{ name: 'tls', url: https, default: true }] } })
  t.teardown(() => untrusted.stop())
  const refused = await get(`${untrusted.url}/v2/tls/app/manifests/v1`, accept)
  t.equal(refused.status, 502, 'an unknown CA is refused')
  t.equal(ociError(refused)?.code, 'UNAVAILABLE')

  const insecure = await startFerry({ config: { upstreams: [{ name: 'tls', url: https, default: true, insecure: true }] } })
  t.teardown(() => insecure.stop())
  t.equal((await get(`${insecure.url}/v2/tls/app/manifests/v1`, accept)).status, 200, 'insecure: true skips verification')
})

t.test('ferry serves HTTPS, and takes a renewed certificate without dropping connections', async t => {
  requireBinary('openssl', 'openssl')
  const dir = scratchDir('ferry-tls-serve-')
  const sh = (args: string[]): void => { execFileSync('openssl', args, { stdio: 'ignore' }) }
  sh(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', '1', '-subj', '/CN=ferry serving CA'])
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
  const issue = (name: string): void => {
    sh(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.csr`), '-subj', '/CN=127.0.0.1'])
    sh(['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-out', join(dir, `${name}.pem`), '-days', '1', '-extfile', join(dir, 'ext.cnf')])
  }
  issue('first'); issue('second')
  const certFile = join(dir, 'serving.pem'); const keyFile = join(dir, 'serving.key')
  copyFileSync(join(dir, 'first.pem'), certFile); copyFileSync(join(dir, 'first.key'), keyFile)

  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const img = await image()
  await pushImage(upstream.url, 'tls/served', 'v1', img)
  const ferry = await startFerry({ config: { upstreams: [{ name: 'up', url: upstream.url, default: true }], tls: { certFile, keyFile } } })
  t.teardown(() => ferry.stop())
  const ca = readFileSync(join(dir, 'ca.crt'))
  const fingerprint = (pem: string): string => new X509Certificate(readFileSync(join(dir, pem))).fingerprint256
  const served = (): Promise<{ fingerprint: string, socket: TLSSocket }> => new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: ferry.port, ca }, () => resolve({ fingerprint: socket.getPeerCertificate().fingerprint256, socket }))
    socket.on('error', reject)
  })

  // skopeo trusts the test's CA from a cert dir (ca.crt), as a node would
  const certDir = join(dir, 'certs'); mkdirSync(certDir); copyFileSync(join(dir, 'ca.crt'), join(certDir, 'ca.crt'))
  requireBinary('skopeo', 'skopeo')
  const raw = execFileSync('skopeo', ['--insecure-policy', 'inspect', '--raw', '--cert-dir', certDir, `docker://127.0.0.1:${ferry.port}/tls/served:v1`], { encoding: 'utf8' })
  t.equal(raw, img.manifest.bytes.toString(), 'skopeo pulls over TLS, trusting the CA')
  t.throws(() => execFileSync('skopeo', ['--insecure-policy', 'inspect', '--raw', `docker://127.0.0.1:${ferry.port}/tls/served:v1`], { stdio: 'ignore' }), 'and refuses without it')

  const before = await served()
  t.equal(before.fingerprint, fingerprint('first.pem'))
  copyFileSync(join(dir, 'second.key'), keyFile); copyFileSync(join(dir, 'second.pem'), certFile)
  let now = before.fingerprint
  for (let i = 0; i < 60 && now !== fingerprint('second.pem'); i++) {
    await new Promise(resolve => setTimeout(resolve, 100))
    const s = await served(); now = s.fingerprint; s.socket.destroy()
  }
  t.equal(now, fingerprint('second.pem'), 'new connections get the renewed certificate')
  const answer = await new Promise<string>(resolve => {
    let text = ''
    before.socket.on('data', (d: Buffer) => { text += d.toString(); if (text.includes('\r\n\r\n')) resolve(text) })
    before.socket.write('GET /v2/ HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n')
  })
  t.match(answer, /^HTTP\/1\.1 200/, 'a connection opened before the renewal still works')
  before.socket.destroy()
})

t.test('HTTPS with the token flow: the challenge names an https realm, and skopeo and ctr log in and pull', async t => {
  requireBinary('openssl', 'openssl')
  const dir = scratchDir('ferry-tls-token-')
  const sh = (args: string[]): void => { execFileSync('openssl', args, { stdio: 'ignore' }) }
  sh(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', '1', '-subj', '/CN=ferry token CA'])
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
  sh(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr'), '-subj', '/CN=127.0.0.1'])
  sh(['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-out', join(dir, 'server.pem'), '-days', '1', '-extfile', join(dir, 'ext.cnf')])
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  writeFileSync(join(dir, 'token.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }))
  registerSecret(TOKEN_PASSWORD)

  const upstream = await startRegistry()
  t.teardown(() => upstream.stop())
  const img = await image({ files: { 'tls.txt': 'pulled over https with a token\n' } })
  await pushImage(upstream.url, 'tls/private', 'v1', img)
  const ferry = await startFerry({ config: {
    upstreams: [{ name: 'up', url: upstream.url, default: true }],
    tls: { certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key') },
    auth: {
      users: { alice: bcrypt.hashSync(TOKEN_PASSWORD, 6) },
      access: [{ repositories: ['**'], allow: { 'user:alice': 'reader' } }],
      token: { keyFile: join(dir, 'token.pem'), service: 'ferry-tls', ttl: '5m' },
    },
  } })
  t.teardown(() => ferry.stop())
  const host = `127.0.0.1:${ferry.port}`

  const challenge = await new Promise<string>((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: ferry.port, ca: readFileSync(join(dir, 'ca.crt')) }, () => {
      socket.write(`GET /v2/ HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`)
    })
    let text = ''
    socket.on('data', (d: Buffer) => { text += d.toString() })
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
  })
  t.match(challenge, new RegExp(`www-authenticate: Bearer realm="https://${host.replace(/\./g, '\\.')}/token",service="ferry-tls"`, 'i'), 'the realm is https, as the client came')

  const certDir = join(dir, 'certs'); mkdirSync(certDir); copyFileSync(join(dir, 'ca.crt'), join(certDir, 'ca.crt'))
  requireBinary('skopeo', 'skopeo')
  const creds = `alice:${TOKEN_PASSWORD}`
  const raw = execFileSync('skopeo', ['--insecure-policy', 'inspect', '--raw', '--cert-dir', certDir, '--creds', creds, `docker://${host}/tls/private:v1`], { encoding: 'utf8' })
  t.equal(raw, img.manifest.bytes.toString(), 'skopeo: the token flow over HTTPS')
  const out = join(dir, 'copy')
  execFileSync('skopeo', ['--insecure-policy', 'copy', '--src-cert-dir', certDir, '--src-creds', creds, `docker://${host}/tls/private:v1`, `oci:${out}:v1`], { stdio: 'ignore' })
  const layer = img.layers[0]!.digest
  t.equal(createHash('sha256').update(readFileSync(join(out, 'blobs', 'sha256', layer.slice(7)))).digest('hex'), layer.slice(7), 'and its layer, byte for byte')
  t.throws(() => execFileSync('skopeo', ['--insecure-policy', 'inspect', '--raw', '--cert-dir', certDir, `docker://${host}/tls/private:v1`], { stdio: 'ignore' }), 'without credentials: refused')

  // containerd resolves through hosts.toml with the CA, as a Kubernetes node would
  const containerd = await startContainerd({})
  t.teardown(() => containerd.stop())
  const hosts = join(dir, 'hosts'); mkdirSync(join(hosts, host), { recursive: true })
  writeFileSync(join(hosts, host, 'hosts.toml'), `server = "https://${host}"\n\n[host."https://${host}"]\n  capabilities = ["pull", "resolve"]\n  ca = "${join(dir, 'ca.crt')}"\n`)
  const ctr = (args: string[]): string => execFileSync('ctr', ['--address', containerd.sock, ...args], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 })
  ctr(['images', 'pull', '--hosts-dir', hosts, '--user', creds, '--snapshotter', 'native', `${host}/tls/private:v1`])
  t.match(ctr(['images', 'ls']), `${host}/tls/private:v1`, 'ctr: pulled over HTTPS with the token flow')
  t.match(ctr(['content', 'ls']), layer, 'with the layer in its content store')
  t.throws(() => ctr(['images', 'pull', '--hosts-dir', hosts, '--snapshotter', 'native', `${host}/tls/private:v1`]), 'ctr without credentials: refused')
})
