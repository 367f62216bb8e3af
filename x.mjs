import { connect } from '@nats-io/transport-node'
import { jetstream, jetstreamManager, DiscardPolicy, StorageType } from '@nats-io/jetstream'
const nc = await connect({ servers: '127.0.0.1:14222', user: 'app', pass: 's3cret' })
const jsm = await jetstreamManager(nc)
for (const size of [600, 660, 665, 670, 1000]) for (const max_bytes of [2000, 2005, 2010, 2015, 2020, 2040]) {
const si = await jsm.streams.add({ name: 'LOGS', subjects: ['LOGS.>'], max_bytes, discard: DiscardPolicy.New, storage: StorageType.File })
const js = jetstream(nc)
let err = ''
for (let i = 0; i < 40; i++) {
  try { const a = await js.publish('LOGS.h1', new Uint8Array(size)); } catch (e) { err = e.message; break }
}
const st = (await jsm.streams.info('LOGS')).state
if (st.first_seq !== 1) console.log('LOST', size, max_bytes, st.first_seq, st.bytes, err)
await jsm.streams.delete('LOGS')
}
console.log('done')
await nc.close()
