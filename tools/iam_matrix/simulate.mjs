// Evaluates thumbx's access matrix with @cloud-copilot/iam-simulate (dev-only: AGPL, never shipped).
// stdin: [{id, simulations: [{principal, action, resource, accountId, context, identityPolicies, resourcePolicy}]}]
// stdout: [{id, decisions: ["Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied"], errors: [..], notes: [..]}]
//
// Every simulation first runs validated (runSimulation: policies, action, resource ARN and context keys are
// checked). A context key the validated run ignores fails the request, with one exception:
// kms:EncryptionContext:<key> - iam-simulate 0.1.173 matches variable context keys only by a '/' suffix,
// so it drops that key; such a request is then decided by the same engine without that input filter
// (runUnsafeSimulation on the validated policies) and says so in its notes.
import { runSimulation, runUnsafeSimulation } from '@cloud-copilot/iam-simulate'
import { createValidatedPolicy, validateResourcePolicy } from '@cloud-copilot/iam-policy'

const ENCRYPTION_CONTEXT = /^kms:encryptioncontext:/i

function simulation(s) {
  return {
    request: {
      principal: s.principal,
      action: s.action,
      resource: { resource: s.resource, accountId: s.accountId },
      contextVariables: s.context
    },
    identityPolicies: s.identityPolicies.map((policy, i) => ({ name: `identity-${i}`, policy })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(s.resourcePolicy ? { resourcePolicy: s.resourcePolicy } : {})
  }
}

async function decide(s) {
  const sim = simulation(s)
  const response = await runSimulation(sim, {})
  if (response.resultType === 'error') {
    return { decision: null, error: JSON.stringify(response.errors) }
  }
  const ignored =
    response.resultType === 'single'
      ? response.result.ignoredContextKeys
      : response.results.flatMap((r) => r.ignoredContextKeys)
  const unexpected = ignored.filter((key) => !ENCRYPTION_CONTEXT.test(key))
  if (unexpected.length > 0) {
    return { decision: null, error: `${s.action}: context keys not valid for the request: ${unexpected}` }
  }
  if (ignored.length === 0) {
    return { decision: response.overallResult }
  }
  const unsafe = runUnsafeSimulation(
    {
      ...sim,
      ...(s.resourcePolicy
        ? { resourcePolicy: createValidatedPolicy(s.resourcePolicy, validateResourcePolicy, { name: 'resource' }) }
        : {})
    },
    {}
  )
  return { decision: typeof unsafe === 'string' ? unsafe : unsafe.result, note: `${s.action}: ${ignored} evaluated without the input filter` }
}

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const requests = JSON.parse(Buffer.concat(chunks).toString('utf8'))
const results = []
for (const request of requests) {
  const decisions = []
  const errors = []
  const notes = []
  for (const s of request.simulations) {
    const { decision, error, note } = await decide(s)
    decisions.push(decision)
    if (error) errors.push(error)
    if (note) notes.push(note)
  }
  results.push({ id: request.id, decisions, errors, notes })
}
process.stdout.write(JSON.stringify(results))
