/**
 * planPartitions on real files: for sorted files the partitions must cut every file into
 * contiguous ranges at record starts, with each record in the partition its time says. The
 * oracle parses the generated lines here (a regular expression and Date.parse), not with the
 * code under test.
 */
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { busyCores } from '../../../src/batch/busy-cores.js'
import type { PlanSource } from '../../../src/batch/merge.js'
import {
  PARTITIONED_MIN_BYTES,
  partitionThreads,
  partitionThreadsFor,
} from '../../../src/batch/partitioned.js'
import { planPartitions } from '../../../src/batch/plan.js'

const BASE = Date.parse('2026-11-24T08:00:00.000Z')
const ISO = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) /

/** One generated file: its text, and where each line starts. */
interface Generated {
  readonly text: string
  readonly lineStarts: readonly number[]
}

/** A sorted file: a preamble without times, then records of a leader and continuation lines. */
function generate(steps: readonly number[], preamble: number, seed: number): Generated {
  const lines: string[] = []
  for (let i = 0; i < preamble; i++) lines.push(`preamble ${i} without a time`)
  let t = BASE
  steps.forEach((step, i) => {
    t += step
    lines.push(`${new Date(t).toISOString()} record ${i} of ${seed} ${'x'.repeat((i * seed) % 90)}`)
    if ((i + seed) % 7 === 0) lines.push('    at a continuation line')
  })
  const lineStarts: number[] = []
  let at = 0
  for (const line of lines) {
    lineStarts.push(at)
    at += Buffer.byteLength(line) + 1
  }
  return { text: lines.length > 0 ? `${lines.join('\n')}\n` : '', lineStarts }
}

/** The time of the line at `offset` of `text`, or null (no timestamp). */
function timeAt(text: string, offset: number): number | null {
  const m = ISO.exec(text.slice(offset, offset + 40))
  return m ? Date.parse(m[1] as string) : null
}

describe('planPartitions', () => {
  let dir: string
  const fds: number[] = []
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'logmerge-plan-'))
  })
  afterEach(() => {
    for (const fd of fds.splice(0)) closeSync(fd)
    rmSync(dir, { recursive: true, force: true })
  })

  const open = (name: string, text: string, start = 0): PlanSource => {
    const path = join(dir, name)
    writeFileSync(path, text)
    const fd = openSync(path, 'r')
    fds.push(fd)
    const st = statSync(path)
    return { fd, key: name, path, label: name, start, size: st.size, mtimeMs: st.mtimeMs }
  }

  it('cuts sorted files at record starts into contiguous ranges, each record in the partition of its time', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            steps: fc.array(fc.constantFrom(0, 0, 1, 7, 250), { minLength: 0, maxLength: 300 }),
            preamble: fc.integer({ min: 0, max: 3 }),
            resumeAt: fc.nat(), // a checkpoint's offset: a line start, picked below
          }),
          { minLength: 1, maxLength: 5 },
        ),
        fc.integer({ min: 1024, max: 8192 }),
        (specs, partBytes) => {
          const files = specs.map((spec, i) => {
            const g = generate(spec.steps, spec.preamble, i + 1)
            const start =
              g.lineStarts.length === 0
                ? 0
                : (g.lineStarts[spec.resumeAt % g.lineStarts.length] as number)
            return {
              g,
              source: open(`f${i}-${Math.random()}.log`, g.text, start % 3 === 0 ? start : 0),
            }
          })
          const plan = planPartitions(
            files.map((f) => f.source),
            { readBytes: 65536, maxLineBytes: 65536, partBytes },
          )
          // Every file starts with a timestamp after at most 3 lines: a plan is always made,
          // except when a non-empty file's first block has no time at all (a lone preamble).
          const lonePreamble = files.some(
            (f) =>
              f.source.size > f.source.start &&
              timeAt(f.g.text, f.source.start) === null &&
              !/\d{4}-/.test(f.g.text.slice(f.source.start)),
          )
          if (plan === null) {
            expect(lonePreamble).toBe(true)
            return
          }
          const parts = plan.partitions
          expect(parts.length).toBeGreaterThanOrEqual(1)
          expect(parts.at(-1)?.bound).toBe(Number.POSITIVE_INFINITY)
          for (let p = 1; p < parts.length; p++) {
            expect((parts[p] as (typeof parts)[number]).bound).toBeGreaterThan(
              (parts[p - 1] as (typeof parts)[number]).bound,
            )
          }
          files.forEach(({ g, source }, i) => {
            expect(parts[0]?.starts[i]).toBe(source.start)
            expect(parts.at(-1)?.ends[i]).toBe(Number.POSITIVE_INFINITY)
            for (let p = 0; p < parts.length; p++) {
              const part = parts[p] as (typeof parts)[number]
              const start = part.starts[i] as number
              const end = Math.min(part.ends[i] as number, source.size)
              if (p + 1 < parts.length) expect(parts[p + 1]?.starts[i]).toBe(part.ends[i])
              // A cut is at a leader (a line with a time), unless it is where the file starts.
              if (p > 0 && start < source.size && start !== source.start) {
                expect(g.lineStarts).toContain(start)
                expect(timeAt(g.text, start)).not.toBeNull()
              }
              const lower =
                p === 0 ? Number.NEGATIVE_INFINITY : (parts[p - 1] as (typeof parts)[number]).bound
              for (const at of g.lineStarts) {
                if (at < start || at >= end) continue
                const t = timeAt(g.text, at)
                if (t === null) continue
                expect(t, `file ${i} line at ${at}, partition ${p}`).toBeGreaterThan(lower)
                expect(t).toBeLessThanOrEqual(part.bound)
              }
            }
          })
          expect(plan.formats.every((f) => f === 'iso' || f === 'auto')).toBe(true)
        },
      ),
      { numRuns: 60 },
    )
  })

  it('no plan for RFC 3164 (its year depends on the lines before) nor for a file without times', () => {
    const iso = open('iso.log', generate([1, 2, 3, 4], 0, 1).text)
    const syslog = open(
      'syslog.log',
      'Nov 24 08:07:01 host app: one\nNov 24 08:07:02 host app: two\n',
    )
    const plain = open('plain.log', 'no time here\nnor here\n')
    const opts = { readBytes: 65536, maxLineBytes: 65536, partBytes: 1024 }
    expect(planPartitions([iso, syslog], opts)).toBeNull()
    expect(planPartitions([iso, plain], opts)).toBeNull()
    expect(planPartitions([iso, syslog], { ...opts, timestampFormat: 'rfc3164' })).toBeNull()
    const plan = planPartitions([iso, open('iso2.log', generate([5, 5], 0, 2).text)], opts)
    expect(plan?.formats).toEqual(['iso', 'iso'])
  })

  it('equal times are never cut apart: a run of one time stays in one partition, however long', () => {
    const same = open('same.log', generate(Array<number>(2000).fill(0), 0, 3).text)
    const other = open('other.log', generate([1, 1, 1, 1], 0, 4).text)
    const plan = planPartitions([same, other], {
      readBytes: 65536,
      maxLineBytes: 65536,
      partBytes: 1024,
      maxPartBytes: 1 << 30,
    })
    expect(plan).not.toBeNull()
    // Every record of same.log has the time BASE: they all land in the partition that holds it.
    const holding =
      plan?.partitions.filter(
        (p) => Math.min(p.ends[0] as number, same.size) > (p.starts[0] as number),
      ) ?? []
    expect(holding).toHaveLength(1)
    // And a partition far over maxPartBytes gives the plan up (memory: one is held whole).
    expect(
      planPartitions([same, other], { readBytes: 65536, maxLineBytes: 65536, partBytes: 1024 }),
    ).toBeNull()
  })
})

describe('planPartitions: the partition that holds the end of a file reads it to its end', () => {
  let dir: string
  const fds: number[] = []
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'logmerge-plan-end-'))
  })
  afterEach(() => {
    for (const fd of fds.splice(0)) closeSync(fd)
    rmSync(dir, { recursive: true, force: true })
  })

  it('a file that ends early, and one empty when planned: their rest, and what is written meanwhile, in one partition', () => {
    const open = (name: string, text: string): PlanSource => {
      const path = join(dir, name)
      writeFileSync(path, text)
      const fd = openSync(path, 'r')
      fds.push(fd)
      const st = statSync(path)
      return { fd, key: name, path, label: name, start: 0, size: st.size, mtimeMs: st.mtimeMs }
    }
    const early = open('early.log', generate(Array<number>(50).fill(10), 0, 1).text)
    const long = open('long.log', generate(Array<number>(400).fill(10), 0, 2).text)
    const empty = open('empty.log', '')
    const plan = planPartitions([early, long, empty], {
      readBytes: 65536,
      maxLineBytes: 65536,
      partBytes: 2048,
    })
    expect(plan).not.toBeNull()
    const parts = plan?.partitions ?? []
    expect(parts.length).toBeGreaterThan(4)
    for (const [i, size] of [
      [0, early.size],
      [2, 0],
    ] as const) {
      // Exactly one partition reads the file from a real offset to +Infinity; after it, none.
      const holding = parts.findIndex((p) => p.ends[i] === Number.POSITIVE_INFINITY)
      expect(holding, `file ${i}`).toBeGreaterThanOrEqual(0)
      expect(parts[holding]?.starts[i]).toBeLessThanOrEqual(size)
      for (const p of parts.slice(holding + 1)) {
        expect(p.starts[i]).toBe(Number.POSITIVE_INFINITY)
        expect(p.ends[i]).toBe(Number.POSITIVE_INFINITY)
      }
      for (const p of parts.slice(0, holding)) expect(p.ends[i]).toBeLessThan(size + 1)
    }
    // The empty file: read to its end by the first partition (lines written meanwhile, with
    // times from its start, are checked against that partition's bound, not sent to the last).
    expect(parts[0]?.ends[2]).toBe(Number.POSITIVE_INFINITY)
    // The long file is cut at record starts until its last partition.
    expect(parts.filter((p) => p.ends[1] === Number.POSITIVE_INFINITY)).toHaveLength(1)
  })
})

describe('partitionThreads and partitionThreadsFor', () => {
  it('threads only for enough bytes and at least three cores nobody else uses, at most four', () => {
    const big = PARTITIONED_MIN_BYTES
    // On 2 cores the reader thread is faster (session 6): partitions from 3 free cores.
    expect(partitionThreads(big, 2, 0)).toBe(0)
    expect(partitionThreads(big, 3, 0)).toBe(3)
    expect(partitionThreads(big, 3, 0.4)).toBe(3)
    expect(partitionThreads(big, 3, 0.6)).toBe(0)
    expect(partitionThreads(big - 1, 8, 0)).toBe(0)
    expect(partitionThreads(big, 1, 0)).toBe(0)
    expect(partitionThreads(big, 8, 5)).toBe(3)
    expect(partitionThreads(big, 16, 0)).toBe(4)
  })

  it('LOGMERGE_PARTITIONS forces them off, on (two at least) or to a number', () => {
    expect(partitionThreadsFor(1, { LOGMERGE_PARTITIONS: 'off' })).toBe(0)
    expect(partitionThreadsFor(1, { LOGMERGE_PARTITIONS: 'on' })).toBeGreaterThanOrEqual(2)
    expect(partitionThreadsFor(1, { LOGMERGE_PARTITIONS: '3' })).toBe(3)
    expect(partitionThreadsFor(1, {})).toBe(0) // one byte: never worth a thread
  })
})

describe('busyCores', () => {
  it('the smaller of the load average and the tasks runnable now, less this process', () => {
    // A machine busy a minute ago, idle now: idle (the load average lags).
    expect(busyCores('2.61 2.47 2.29 1/77 12345\n', 2.61)).toBe(0)
    // Busy now, quiet over the minute: the load average.
    expect(busyCores('0.40 0.30 0.20 4/77 12345\n', 0.4)).toBe(0.4)
    expect(busyCores('3.10 2.00 1.00 3/90 1\n', 3.1)).toBe(2)
    // No /proc (not Linux), or a text it cannot read: the load average.
    expect(busyCores(null, 1.5)).toBe(1.5)
    expect(busyCores('garbage', 1.5)).toBe(1.5)
  })
})
