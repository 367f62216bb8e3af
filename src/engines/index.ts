import type { EngineName } from '../config.js'
import { runAsync } from './async.js'
import type { Engine } from './engine.js'

export const engines: Record<EngineName, Engine> = {
  async: runAsync,
}
