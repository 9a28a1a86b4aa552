// kafkajs 2.2.4 driven by Brook's compatibility tests.
//
// Reads one JSON command from stdin, runs it against the broker and prints one JSON document
// on stdout (the result) before exiting 0; a failure prints {"error": ...} and exits 1.
// Commands:
//   {"op": "produce", "brokers": [...], "topic": t, "acks": -1|0|1, "compression": "none"|"gzip"|
//    "snappy"|"lz4"|"zstd", "idempotent": bool, "batches": [[message, ...], ...]}
//     message: {"key": str|null, "value": str, "valueRepeat": [str, n], "headers": {k: v},
//               "timestamp": "ms", "partition": n}
//     -> {"results": [[{"partition", "baseOffset", "errorCode"}, ...] per batch]}
//   {"op": "consume", "brokers": [...], "topic": t, "groupId": g, "fromBeginning": bool,
//    "count": n, "timeoutMs": ms, "produceWhileWaiting": {"prefix": p, "partition": n}}
//     (through a consumer group: kafkajs has no assign(); produceWhileWaiting sends p-0, p-1, ...
//     every 300 ms after the group is joined, until count records were read)
//     -> {"messages": [{"partition", "offset", "key", "value", "headers", "timestamp"}]}
//     "readUncommitted": bool (default false: kafkajs reads committed), "untilValue": v (stop
//     once a record with value v was read, whatever count says)
//   {"op": "transactions", "brokers": [...], "topic": t, "transactionalId": id,
//    "transactionTimeout": ms, "transactions": [{"messages": [message, ...],
//    "end": "commit"|"abort"|"open"}]}
//     (one transactional producer; "open" leaves the transaction open and exits without
//     disconnecting, for the broker to abort when it times out) -> {"ended": [end, ...]}
//   {"op": "fence", "brokers": [...], "topic": t, "transactionalId": id, "zombie": [message...],
//    "successor": [message...]}
//     (the zombie opens a transaction and sends; a second producer with the same id connects
//     (InitProducerId), sends and commits; then the zombie tries to send and commit)
//     -> {"zombieError": {"name", "type", "message"} | null}
//   {"op": "admin", "brokers": [...], "actions": [{"createTopics": {...}} | {"listTopics": {}} |
//    {"fetchTopicMetadata": {...}} | {"fetchTopicOffsetsByTimestamp": [topic, ts]} |
//    {"deleteTopics": {...}}]}
//     -> {"results": [...]}
// Any command may carry "ssl": {"ca": path, "cert": path, "key": path} (cert and key optional):
// the client then connects with TLS, trusting that CA and presenting that certificate.
// Any command may carry "sasl": {"mechanism": "plain" | "scram-sha-256" | "scram-sha-512",
// "username": ..., "password": ...}: the client then authenticates with SASL.
'use strict'

const fs = require('fs')

const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4js = require('lz4js')
const lz4xxh32 = require('lz4js/xxh32')
const { ZstdCodec } = require('zstd-codec')

// kafkajs only has gzip built in; the other codecs are plugged in, as its documentation says.
// These are pure-JavaScript implementations (no native build).
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
// lz4js marks its frames "dependent blocks" (FLG 0x40), which Kafka refuses ("Dependent block
// stream is unsupported", Lz4BlockOutputStream.FLG.validate). A frame of one block (lz4js blocks
// are 4 MB) is independent whatever the flag says, so it is declared so, as kafkajs-lz4 writes it.
function independentLz4Frame (frame) {
  const blocks = []
  for (let pos = 7; ;) {
    const size = frame.readUInt32LE(pos) & 0x7fffffff
    if (size === 0) break
    blocks.push(size)
    pos += 4 + size
  }
  if (blocks.length > 1) throw new Error('lz4js wrote a multi-block frame: dependent blocks')
  frame[4] |= 0x20
  frame[6] = (lz4xxh32.hash(0, frame, 4, 2) >> 8) & 0xff
  return frame
}

CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress (encoder) {
    return independentLz4Frame(Buffer.from(lz4js.compress(encoder.buffer)))
  },
  async decompress (buffer) {
    return Buffer.from(lz4js.decompress(buffer))
  }
})

function zstdCodec () {
  let simple = null
  const ready = new Promise((resolve) => ZstdCodec.run((zstd) => {
    simple = new zstd.Simple()
    resolve()
  }))
  return () => ({
    async compress (encoder) {
      await ready
      return Buffer.from(simple.compress(encoder.buffer, 3))
    },
    async decompress (buffer) {
      await ready
      return Buffer.from(simple.decompress(buffer))
    }
  })
}
CompressionCodecs[CompressionTypes.ZSTD] = zstdCodec()

const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD
}

function tlsOptions (ssl) {
  if (!ssl) return undefined
  const options = { ca: [fs.readFileSync(ssl.ca, 'utf-8')] }
  if (ssl.cert) {
    options.cert = fs.readFileSync(ssl.cert, 'utf-8')
    options.key = fs.readFileSync(ssl.key, 'utf-8')
  }
  return options
}

function client (cmd) {
  return new Kafka({
    clientId: 'brook-compat-kafkajs',
    brokers: cmd.brokers,
    ssl: tlsOptions(cmd.ssl),
    sasl: cmd.sasl,
    logLevel: logLevel.WARN,
    // stdout carries the result only.
    logCreator: () => ({ namespace, level, log }) => {
      process.stderr.write(`[kafkajs ${level}] ${namespace}: ${JSON.stringify(log)}\n`)
    },
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 5, initialRetryTime: 100 }
  })
}

function toMessage (m) {
  const out = {
    key: m.key === undefined ? null : m.key,
    value: m.valueRepeat ? m.valueRepeat[0].repeat(m.valueRepeat[1]) : m.value
  }
  if (m.headers) out.headers = m.headers
  if (m.timestamp !== undefined) out.timestamp = String(m.timestamp)
  if (m.partition !== undefined) out.partition = m.partition
  return out
}

async function produce (cmd) {
  const producer = client(cmd).producer({
    idempotent: !!cmd.idempotent,
    maxInFlightRequests: cmd.idempotent ? 1 : undefined,
    allowAutoTopicCreation: false
  })
  await producer.connect()
  try {
    const results = []
    for (const batch of cmd.batches) {
      const sent = await producer.send({
        topic: cmd.topic,
        acks: cmd.acks,
        compression: COMPRESSION[cmd.compression || 'none'],
        timeout: 15000,
        messages: batch.map(toMessage)
      })
      results.push(sent.map((r) => ({
        partition: r.partition, baseOffset: r.baseOffset, errorCode: r.errorCode
      })))
    }
    return { results }
  } finally {
    await producer.disconnect()
  }
}

async function consume (cmd) {
  const kafka = client(cmd)
  const consumer = kafka.consumer({
    groupId: cmd.groupId, maxWaitTimeInMs: 200, readUncommitted: !!cmd.readUncommitted
  })
  const messages = []
  let producer = null
  let producing = null
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: cmd.topic, fromBeginning: !!cmd.fromBeginning })
    if (cmd.produceWhileWaiting) {
      // "latest": once the group is joined, keep producing fresh records until enough arrive,
      // so the test does not depend on when the consumer resolved the log end.
      producer = kafka.producer({ allowAutoTopicCreation: false })
      await producer.connect()
      const spec = cmd.produceWhileWaiting
      consumer.on(consumer.events.GROUP_JOIN, () => {
        let i = 0
        producing = setInterval(() => {
          producer.send({
            topic: cmd.topic,
            acks: -1,
            messages: [{ value: `${spec.prefix}-${i++}`, partition: spec.partition }]
          }).catch((err) => process.stderr.write(`produce failed: ${err}\n`))
        }, 300)
      })
    }
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, cmd.timeoutMs || 20000)
      consumer.run({
        eachMessage: async ({ partition, message }) => {
          const headers = {}
          for (const [k, v] of Object.entries(message.headers || {})) headers[k] = v.toString()
          messages.push({
            partition,
            offset: message.offset,
            key: message.key === null ? null : message.key.toString(),
            value: message.value === null ? null : message.value.toString(),
            headers,
            timestamp: message.timestamp
          })
          const last = messages[messages.length - 1].value
          if (messages.length >= cmd.count || (cmd.untilValue !== undefined && last === cmd.untilValue)) {
            clearTimeout(timer)
            resolve()
          }
        }
      }).catch(reject)
    })
  } finally {
    if (producing) clearInterval(producing)
    if (producer) await producer.disconnect()
    await consumer.disconnect()
  }
  return { messages }
}

function transactionalProducer (cmd) {
  return client(cmd).producer({
    transactionalId: cmd.transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: cmd.transactionTimeout || 60000,
    allowAutoTopicCreation: false
  })
}

async function transactions (cmd) {
  const producer = transactionalProducer(cmd)
  await producer.connect()
  const ended = []
  let open = false
  for (const spec of cmd.transactions) {
    const txn = await producer.transaction()
    await txn.send({ topic: cmd.topic, acks: -1, messages: spec.messages.map(toMessage) })
    if (spec.end === 'commit') await txn.commit()
    else if (spec.end === 'abort') await txn.abort()
    else open = true
    ended.push(spec.end)
    if (open) break
  }
  // An open transaction is left to the broker's timeout: no abort, no disconnect (main exits).
  if (!open) await producer.disconnect()
  return { ended }
}

function describeError (err) {
  return { name: err.name, type: err.type || null, message: String(err.message) }
}

async function fence (cmd) {
  const zombie = transactionalProducer(cmd)
  await zombie.connect()
  const zombieTxn = await zombie.transaction()
  await zombieTxn.send({ topic: cmd.topic, acks: -1, messages: cmd.zombie.map(toMessage) })
  const successor = transactionalProducer(cmd)
  await successor.connect()
  const txn = await successor.transaction()
  await txn.send({ topic: cmd.topic, acks: -1, messages: cmd.successor.map(toMessage) })
  await txn.commit()
  let zombieError = null
  try {
    await zombieTxn.send({ topic: cmd.topic, acks: -1, messages: cmd.zombie.map(toMessage) })
    await zombieTxn.commit()
  } catch (err) {
    zombieError = describeError(err)
  }
  await successor.disconnect()
  await zombie.disconnect().catch(() => {})
  return { zombieError }
}

async function admin (cmd) {
  const adm = client(cmd).admin()
  await adm.connect()
  try {
    const results = []
    for (const action of cmd.actions) {
      const [name, arg] = Object.entries(action)[0]
      if (name === 'fetchTopicOffsetsByTimestamp') {
        results.push(await adm.fetchTopicOffsetsByTimestamp(arg[0], arg[1]))
      } else {
        results.push(await adm[name](arg))
      }
    }
    return { results: results.map((r) => (r === undefined ? null : r)) }
  } finally {
    await adm.disconnect()
  }
}

async function main () {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  const cmd = JSON.parse(Buffer.concat(chunks).toString())
  const ops = { produce, consume, admin, transactions, fence }
  const run = ops[cmd.op]
  if (!run) throw new Error(`unknown op ${cmd.op}`)
  return run(cmd)
}

main().then(
  (result) => {
    process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
  },
  (err) => {
    process.stdout.write(JSON.stringify({ error: String(err && err.stack ? err.stack : err) }) + '\n',
      () => process.exit(1))
  }
)
