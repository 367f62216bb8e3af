/**
 * The memory of a CopyArena (arena.ts): bytes, and a copy from one place in them to another.
 *
 * The copy is the hot path of a time-ordered merge: one call per run of lines taken from a
 * block, 4 million calls for the benchmark's 512 MiB, each of 100-200 bytes. Where it is
 * available the memory is a WebAssembly memory and the copy a four-instruction WebAssembly
 * function (`memory.copy`): a call from optimised JavaScript into it costs about 18 ns with
 * the copy, against about 35 ns for `Uint8Array.prototype.copyWithin` (a C++ builtin, entered
 * through the runtime on every call) on the benchmark machine. Without WebAssembly (Node run
 * with --jitless) it is an ordinary buffer and copyWithin.
 *
 * `shared`: the memory is a SharedArrayBuffer, so that a reader thread can put blocks into the
 * arena's slots (feed.ts). WebAssembly's copy has no slower path for shared memory;
 * copyWithin and Buffer.indexOf do (2 to 4 times slower), so the fallback never shares.
 */

export interface ArenaMemory {
  /** The whole memory (at least the size asked for; WebAssembly rounds up to 64 KiB pages). */
  readonly bytes: Buffer
  /** Copies bytes[from, from + length) to bytes[to, ...); the two may overlap. */
  readonly copy: (to: number, from: number, length: number) => void
  /** The bytes are a SharedArrayBuffer (another thread may read into them). */
  readonly shared: boolean
  /** The copy runs in WebAssembly (false: copyWithin). */
  readonly wasm: boolean
}

/**
 * The part of the WebAssembly API used here (the compiler's lib has no WebAssembly without
 * the DOM's). Undefined when Node runs with --jitless.
 */
declare namespace WebAssembly {
  interface MemoryDescriptor {
    initial: number
    maximum?: number
    shared?: boolean
  }
  class Memory {
    constructor(descriptor: MemoryDescriptor)
    readonly buffer: ArrayBuffer | SharedArrayBuffer
  }
  class Module {
    constructor(bytes: Uint8Array)
  }
  class Instance {
    constructor(module: Module, imports: Record<string, Record<string, unknown>>)
    readonly exports: Record<string, unknown>
  }
}

const WASM_PAGE = 64 * 1024
const MAX_PAGES = 65536
/**
 * The largest WebAssembly memory (4 GiB): larger arenas (some 10,000 files with the reader
 * thread's five slots each) get a plain buffer, and cannot be shared.
 */
export const MAX_WASM_BYTES = MAX_PAGES * WASM_PAGE

/**
 * The module, written out by hand (the WebAssembly binary format, spec section 5):
 *
 *   (module
 *     (import "m" "mem" (memory 1))                       ;; or (memory 1 1 shared)
 *     (func (export "copy") (param $to i32) (param $from i32) (param $n i32)
 *       (memory.copy (local.get $to) (local.get $from) (local.get $n))))
 *
 * The shared variant differs in its import's limits: flag 0x03 ("min and max, shared") and a
 * maximum, which a shared memory must have; the module's is the largest there is (65536 pages,
 * 4 GiB), so it takes a shared memory of any size. Each variant is compiled once.
 */
function copyModule(shared: boolean): Uint8Array {
  const limits = shared ? [0x03, ...leb128(1), ...leb128(MAX_PAGES)] : [0x00, ...leb128(1)]
  const importEntry = [
    0x01, // one import
    0x01,
    0x6d, // module "m"
    0x03,
    0x6d,
    0x65,
    0x6d, // name "mem"
    0x02, // a memory
    ...limits,
  ]
  const body = [
    0x00, // no locals
    0x20,
    0x00, // local.get 0 (to)
    0x20,
    0x01, // local.get 1 (from)
    0x20,
    0x02, // local.get 2 (n)
    0xfc,
    0x0a,
    0x00,
    0x00, // memory.copy, memory 0 to memory 0
    0x0b, // end
  ]
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d], // "\0asm"
    ...[0x01, 0x00, 0x00, 0x00], // version 1
    ...[0x01, 0x07, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00], // types: (i32 i32 i32) -> ()
    ...[0x02, importEntry.length, ...importEntry], // imports
    ...[0x03, 0x02, 0x01, 0x00], // functions: one, of type 0
    ...[0x07, 0x08, 0x01, 0x04, 0x63, 0x6f, 0x70, 0x79, 0x00, 0x00], // export "copy" = func 0
    ...[0x0a, body.length + 2, 0x01, body.length, ...body], // code
  ])
}

/** Unsigned LEB128, as the binary format writes integers. */
function leb128(n: number): number[] {
  const out: number[] = []
  let rest = n
  do {
    const byte = rest & 0x7f
    rest >>>= 7
    out.push(rest === 0 ? byte : byte | 0x80)
  } while (rest !== 0)
  return out
}

let wasmWorks: boolean | undefined
const modules = new Map<boolean, WebAssembly.Module>()

function compiled(shared: boolean): WebAssembly.Module {
  let module = modules.get(shared)
  if (module === undefined) {
    module = new WebAssembly.Module(copyModule(shared))
    modules.set(shared, module)
  }
  return module
}

/** Memory of at least `size` bytes (see ArenaMemory); `wasm: false` forces the fallback. */
export function arenaMemory(
  size: number,
  options: { readonly shared?: boolean; readonly wasm?: boolean } = {},
): ArenaMemory {
  if (!Number.isInteger(size) || size < 1) throw new RangeError('size must be an integer >= 1')
  const shared = options.shared ?? false
  if (options.wasm !== false && size <= MAX_WASM_BYTES && wasmAvailable()) {
    const pages = Math.ceil(size / WASM_PAGE)
    const memory = new WebAssembly.Memory(
      shared ? { initial: pages, maximum: pages, shared: true } : { initial: pages },
    )
    const copy = copyIn(memory, shared)
    // The memory never grows (it would detach these views).
    return { bytes: Buffer.from(memory.buffer), copy, shared, wasm: true }
  }
  if (shared) {
    throw new Error(
      'shared arena memory needs WebAssembly, and at most 4 GiB (copyWithin is slow on shared memory)',
    )
  }
  const bytes = Buffer.allocUnsafeSlow(size)
  return {
    bytes,
    copy: (to, from, length) => {
      bytes.copyWithin(to, from, from + length)
    },
    shared: false,
    wasm: false,
  }
}

/** The module's copy, instantiated on `memory`. */
function copyIn(memory: WebAssembly.Memory, shared: boolean): ArenaMemory['copy'] {
  const instance = new WebAssembly.Instance(compiled(shared), { m: { mem: memory } })
  return instance.exports.copy as ArenaMemory['copy']
}

/** WebAssembly can be used here (not under --jitless, which leaves it undefined). */
export function wasmAvailable(): boolean {
  if (wasmWorks === undefined) {
    try {
      const memory = new WebAssembly.Memory({ initial: 1 })
      const copy = copyIn(memory, false)
      const bytes = new Uint8Array(memory.buffer)
      bytes[0] = 42
      copy(1, 0, 1)
      wasmWorks = bytes[1] === 42
    } catch {
      wasmWorks = false
    }
  }
  return wasmWorks
}
