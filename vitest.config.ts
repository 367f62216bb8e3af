import { defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/**
 * The longest test files, longest first (seconds in a full run on the 2-vCPU CI machine, after
 * the cuts of branch `suite`). Two workers take files from the front of the queue, so the long
 * ones start first and the short ones fill in at the end: the workers end together. In the
 * default order (by duration cached from the last run, else by file size: CI has no cache), a
 * long file could start last and run alone at the end. Refresh from
 * `npx vitest run --reporter=json --outputFile=t.json` when the order no longer holds.
 */
const LONGEST_FIRST = [
  'e2e/fleet-crash', // ~79 s, one test: it cannot be shared between the workers
  'e2e/input-faults',
  'e2e/follow',
  'e2e/checkpoint',
  'e2e/time-order',
  'e2e/copytruncate',
  'e2e/output-faults',
  'e2e/soak',
  'e2e/metrics',
  'e2e/fleet',
  'e2e/time-order-stop',
  'e2e/kill-rotation',
]

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (spec: TestSpecification): number => {
      const i = LONGEST_FIRST.findIndex((name) => spec.moduleId.endsWith(`/test/${name}.test.ts`))
      return i < 0 ? LONGEST_FIRST.length : i
    }
    // Stable: the files not listed keep the default order among themselves.
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b))
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60000,
    pool: 'forks',
    // Two files at a time even on two cores: the end-to-end files mostly wait on child
    // processes, timers and the disk, so this halves the suite's time (281 s -> 154 s on the
    // 2-vCPU CI machine) while each file's own time grows by under 10 %.
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
  },
})
