// HTTPS upstreams: a private CA trusted per upstream (caFile), or no
// verification at all (insecure), and refusal without either.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startFerry } from '../helpers/ferry.ts'
import { get, ociError } from '../helpers/http.ts'
import { image, pushImage } from '../helpers/images.ts'
import { requireBinary, startRegistry } from '../helpers/registry.ts'

t.test('an HTTPS upstream with a private CA', async t => {
  requireBinary('openssl', 'openssl')
  const dir = mkdtempSync(join(tmpdir(), 'ferry-tls-'))
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
