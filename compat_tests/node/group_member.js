// A kafkajs 2.2.4 consumer-group member for Brook's group tests (compat_tests/test_groups.py).
//
// node group_member.js '<json config>' joins group `group` on `topic` (from the beginning) with
// kafkajs' defaults (RoundRobin assigner, commits after each batch) and prints one JSON object
// a line on stdout, like compat_tests/group_worker.py:
//   {"ev": "assigned", "partitions": [...], "all": [...]}   on every GROUP_JOIN
//   {"ev": "record", "p": partition, "o": offset}           for every message
//   {"ev": "closed"}                                        after "close" on stdin
// Config: bootstrap, group, topic, session_ms, heartbeat_ms, client_id.
'use strict'

const { Kafka, logLevel } = require('kafkajs')
const readline = require('readline')

const cfg = JSON.parse(process.argv[2])
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n')

async function main () {
  const kafka = new Kafka({
    clientId: cfg.client_id || 'kafkajs-worker',
    brokers: [cfg.bootstrap],
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 100, retries: 30 }
  })
  const consumer = kafka.consumer({
    groupId: cfg.group,
    sessionTimeout: cfg.session_ms || 6000,
    heartbeatInterval: cfg.heartbeat_ms || 500,
    rebalanceTimeout: 10000,
    maxWaitTimeInMs: 200,
    metadataMaxAge: 1000
  })
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const all = (e.payload.memberAssignment[cfg.topic] || []).slice().sort((a, b) => a - b)
    emit({ ev: 'assigned', partitions: all, all, generation: e.payload.generationId })
  })
  let closing = false
  readline.createInterface({ input: process.stdin }).on('line', async (line) => {
    if (line.trim() === 'close' && !closing) {
      closing = true
      await consumer.disconnect()
      emit({ ev: 'closed' })
      process.exit(0)
    }
  })
  await consumer.connect()
  await consumer.subscribe({ topic: cfg.topic, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      emit({ ev: 'record', p: partition, o: Number(message.offset) })
    }
  })
}

main().catch((err) => {
  emit({ ev: 'error', error: String(err && err.stack ? err.stack : err) })
  process.exit(1)
})
