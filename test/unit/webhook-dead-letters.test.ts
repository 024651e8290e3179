// Dead letters on one machine are a file that must not grow without end: a
// receiver down while pulls pour in would otherwise fill the disk the cache
// lives on. Past its size it becomes .1; listing reads both, oldest first.
import { existsSync, linkSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { FileDeadLetters } from '../../src/observe/webhook-dead-letters.ts'
import { scratchDir } from '../helpers/procs.ts'

const letter = (n: number): Parameters<FileDeadLetters['add']>[0] => ({
  hook: 'ops', error: 'the receiver answered 503', at: n,
  event: { specversion: '1.0', id: `id-${n}`, source: '/ferry/test', type: 'io.ferry.pull', subject: `team/app-${n}`, time: new Date(0).toISOString(), datacontenttype: 'application/json', data: { n, pad: 'x'.repeat(100) } },
})

t.test('a file of dead letters stays within twice its size, and lists the newest in order', async t => {
  const file = join(scratchDir('ferry-dead-letters-'), 'webhook-dead-letters.jsonl')
  const max = 16 * 1024
  const dead = new FileDeadLetters(file, max)
  for (let n = 1; n <= 1000; n++) await dead.add(letter(n))
  const line = JSON.stringify(letter(1000)).length + 1
  t.ok(statSync(file).size <= max + line, `the file is ${statSync(file).size} bytes`)
  t.ok(statSync(`${file}.1`).size <= max + line, `its .1 is ${statSync(`${file}.1`).size} bytes`)
  const listed = await dead.list()
  t.equal(listed.at(-1)?.event.id, 'id-1000', 'the newest is last')
  // the .1 alone holds a full file's worth
  t.ok(listed.length >= Math.floor(max / line) && listed.length < 1000, `${listed.length} of 1,000 kept`)
  t.ok(listed.every((l, i) => i === 0 || l.at === listed[i - 1]!.at + 1), 'in order, none missing between the oldest kept and the newest')
})

t.test('under its size, nothing is rotated and everything is listed', async t => {
  const file = join(scratchDir('ferry-dead-letters-'), 'webhook-dead-letters.jsonl')
  const dead = new FileDeadLetters(file)
  for (let n = 1; n <= 20; n++) await dead.add(letter(n))
  t.same((await dead.list()).map(l => l.at), Array.from({ length: 20 }, (_, i) => i + 1))
})

t.test('many letters at once: a rotation never puts a fresh file over the one just rotated', async t => {
  // workers (and one process's concurrent failures) append and rotate at once: two that both find the
  // file past its size must not both rename, or the second moves a new, nearly empty file over the .1
  const file = join(scratchDir('ferry-dead-letters-'), 'webhook-dead-letters.jsonl')
  const max = 16 * 1024
  const writers = [new FileDeadLetters(file, max), new FileDeadLetters(file, max)]
  const line = JSON.stringify(letter(1000)).length + 1
  let smallest = Infinity
  for (let round = 0; round < 40; round++) {
    await Promise.all(Array.from({ length: 30 }, async (_, i) => {
      await new Promise(resolve => setTimeout(resolve, i % 7))
      await writers[i % 2]!.add(letter(round * 30 + i + 1))
      smallest = Math.min(smallest, statSync(`${file}.1`, { throwIfNoEntry: false })?.size ?? Infinity)
    }))
  }
  t.ok(smallest >= max - line, `the .1 never held less than a file's worth: ${smallest} bytes at its smallest`)
  t.ok((await writers[0]!.list()).length >= Math.floor(max / line), 'a full file\'s worth listed')
})

t.test('a rotation left half done by a process that died is finished by the next', async t => {
  const file = join(scratchDir('ferry-dead-letters-'), 'webhook-dead-letters.jsonl')
  const max = 4 * 1024
  const dead = new FileDeadLetters(file, max)
  for (let n = 1; n <= 20; n++) await dead.add(letter(n))
  linkSync(file, `${file}.rotating`) // claimed, then the process was killed
  for (let n = 21; n <= 200; n++) await dead.add(letter(n))
  t.notOk(existsSync(`${file}.rotating`), 'the claim is gone')
  t.ok(statSync(file).size <= 2 * max, `the file stays bounded: ${statSync(file).size} bytes`)
  const listed = await dead.list()
  t.equal(listed.at(-1)?.at, 200, 'the newest is listed')
  t.ok(listed.every((l, i) => i === 0 || l.at === listed[i - 1]!.at + 1), 'in order, none missing')
})
