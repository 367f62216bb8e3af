import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60000,
    pool: 'forks',
    // Two files at a time even on two cores: the end-to-end files mostly wait on child
    // processes, timers and the disk, so this halves the suite's time (281 s -> 154 s on the
    // 2-vCPU CI machine) while each file's own time grows by under 10 %.
    maxWorkers: 2,
  },
})
