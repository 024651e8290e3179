import t from 'tap'
import { OciError } from '../../src/oci/errors.ts'
import { parseDigest, parseName, parseReference } from '../../src/oci/reference.ts'
import { parseRange } from '../../src/oci/range.ts'
import { accepts, ALL_MANIFEST_TYPES, parseAccept } from '../../src/oci/media-types.ts'
import { parseChallenges } from '../../src/registry-client/challenge.ts'

function code (fn: () => unknown): string | undefined {
  try { fn() } catch (err) { return err instanceof OciError ? err.code : 'NOT_OCI' }
  return undefined
}

t.test('valid repository names are accepted as they are', async t => {
  for (const n of ['a', 'library/nginx', 'a/b/c/d', 'my-org/my_app', 'x.y__z', 'a--b', 'ghcr.io/org/app', '0/1']) t.equal(parseName(n), n)
})

t.test('invalid repository names are NAME_INVALID', async t => {
  for (const n of ['', 'UPPER', 'Library/nginx', '..', 'a/../b', 'a//b', '/a', 'a/', '-a', 'a-', 'a___b', 'a b', 'a%2fb', 'a:b', 'x'.repeat(256)]) {
    t.equal(code(() => parseName(n)), 'NAME_INVALID', JSON.stringify(n.slice(0, 20)))
  }
})

t.test('digests: sha256 and sha512 with the right length and alphabet', async t => {
  const d = parseDigest('sha256:' + 'a'.repeat(64))
  t.same([d.algorithm, d.hex], ['sha256', 'a'.repeat(64)])
  t.equal(parseDigest('sha512:' + '0'.repeat(128)).algorithm, 'sha512')
  for (const bad of ['sha256:' + 'a'.repeat(63), 'sha256:' + 'A'.repeat(64), 'sha256:' + 'g'.repeat(64), 'md5:' + 'a'.repeat(32), 'sha256', ':abc', 'sha512:' + 'a'.repeat(64), 'sha256:' + 'a'.repeat(65)]) {
    t.equal(code(() => parseDigest(bad)), 'DIGEST_INVALID', bad.slice(0, 20))
  }
})

t.test('references are tags or digests; bad tags are TAG_INVALID', async t => {
  t.same(parseReference('latest'), { kind: 'tag', tag: 'latest' })
  t.equal(parseReference('sha256:' + 'b'.repeat(64)).kind, 'digest')
  for (const bad of ['-x', '.x', 'x'.repeat(129), 'a/b', 'a%20b']) t.equal(code(() => parseReference(bad)), 'TAG_INVALID', bad.slice(0, 20))
  t.equal(code(() => parseReference('sha256:xyz')), 'DIGEST_INVALID')
})

t.test('ranges: single byte ranges, suffixes, open ends; unsatisfiable ones are RANGE_INVALID; what is no byte range is ignored', async t => {
  t.equal(parseRange(undefined, 100), undefined)
  t.same(parseRange('bytes=0-9', 100), { start: 0, end: 9 })
  t.same(parseRange('bytes=90-', 100), { start: 90, end: 99 })
  t.same(parseRange('bytes=-10', 100), { start: 90, end: 99 })
  t.same(parseRange('bytes=95-200', 100), { start: 95, end: 99 }, 'end clamped to the size')
  t.same(parseRange('bytes=-500', 100), { start: 0, end: 99 })
  t.equal(parseRange('bytes=0-1,5-6', 100), undefined, 'several ranges: the whole blob')
  t.same(parseRange('bytes=0-99999999999999999999', 100), { start: 0, end: 99 }, 'a last position past any size is clamped')
  for (const bad of ['bytes=100-', 'bytes=5-1', 'bytes=-0', 'bytes=99999999999999999999-']) {
    t.equal(code(() => parseRange(bad, 100)), 'RANGE_INVALID', bad)
  }
  for (const ignored of ['bytes=-', 'items=0-1', 'bytes=a-b', 'garbage']) t.equal(parseRange(ignored, 100), undefined, `${ignored}: ignored (RFC 9110 14.2)`)
})

t.test('Accept is a set of manifest types: order, parameters, duplicates and other types do not matter; wildcards stand for what they cover', async t => {
  const OCI = 'application/vnd.oci.image.manifest.v1+json'
  const INDEX = 'application/vnd.oci.image.index.v1+json'
  t.same(parseAccept(`${OCI};q=0.5, ${INDEX} ,${OCI}`), [INDEX, OCI])
  t.same(parseAccept([INDEX, 'c/z', 'application/json']), [INDEX], 'types that are no manifest are dropped')
  t.same(parseAccept('*/*'), [...ALL_MANIFEST_TYPES].sort(), 'a wildcard is every manifest type')
  t.same(parseAccept('x/y, z/w'), [], 'nothing known: as no Accept at all')
  t.same(parseAccept(undefined), [])
  t.ok(accepts(['*/*'], 'application/vnd.oci.image.index.v1+json'))
  t.ok(accepts(['application/*'], 'application/vnd.oci.image.index.v1+json'))
  t.notOk(accepts(['application/vnd.oci.image.manifest.v1+json'], 'application/vnd.oci.image.index.v1+json'))
  t.notOk(accepts([], 'a/b'))
})

t.test('WWW-Authenticate challenges are parsed with quoted commas', async t => {
  const c = parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')
  t.same(c, [{ scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } }])
  t.same(parseChallenges('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }])
  t.same(parseChallenges(undefined), [])
})
