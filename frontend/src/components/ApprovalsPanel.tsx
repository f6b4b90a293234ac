import { useState } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Check, ChevronDown, Loader2, ShieldCheck, X } from 'lucide-react'
import type { Approval } from '../lib/api'
import { can, useSession } from '../lib/context'
import { usd, when } from '../lib/format'
import { useToast } from './Toasts'
import { keys } from '../lib/keys'

/** Pending production approvals with what an approver needs to decide: the plan, its cost, the
 * guardrail findings and the policy evidence. Decisions carry the plan hash that was reviewed,
 * so a plan that changed meanwhile is refused rather than approved unseen. */
export function ApprovalsPanel({ live }: { live: boolean }) {
  const { api } = useSession()
  const query = useQuery({ queryKey: keys.approvals, queryFn: api.approvals, refetchInterval: live ? 60_000 : 10_000 })
  const approvals = query.data ?? []
  return (
    <section aria-labelledby="approvals-title" className="rounded-xl border border-gray-200 bg-white shadow-sm dark:border-gray-800 dark:bg-gray-900">
      <div className="flex items-center gap-2 border-b border-gray-200 px-5 py-3 dark:border-gray-800">
        <ShieldCheck className="h-4 w-4 text-yellow-500" aria-hidden />
        <h2 id="approvals-title" className="font-semibold">
          Pending approvals <span className="text-sm font-normal text-gray-500">({approvals.length})</span>
        </h2>
      </div>
      {query.isError && <p role="alert" className="px-5 py-3 text-sm text-red-600">Could not load approvals: {(query.error as Error).message}</p>}
      {query.isSuccess && approvals.length === 0 && <p className="px-5 py-4 text-sm text-gray-500">Nothing is waiting for approval.</p>}
      <ul className="divide-y divide-gray-100 dark:divide-gray-800">
        {approvals.map((a) => (
          <ApprovalItem key={a.plan_id} approval={a} />
        ))}
      </ul>
    </section>
  )
}

function ApprovalItem({ approval: a }: { approval: Approval }) {
  const { api, me } = useSession()
  const toast = useToast()
  const client = useQueryClient()
  const [reason, setReason] = useState('')
  const [error, setError] = useState<string | null>(null)
  const approver = can(me, 'approver')
  const own = a.requested_by === me.user_id
  const already = a.approvers.includes(me.user_id)
  const decision = useMutation({
    mutationFn: (choice: 'approve' | 'reject') => api.decide(a.plan_id, choice, reason.trim(), a.plan_hash),
    onMutate: () => setError(null),
    onSuccess: (_answer, choice) =>
      toast(`${a.artifact.endpoint_name} ${choice === 'approve' ? 'approved' : 'rejected'}`, { variant: 'success' }),
    onError: (e, choice) => {
      setError((e as Error).message)
      toast((e as Error).message, { variant: 'error', title: `Could not ${choice}` })
    },
    onSettled: () => {
      void client.invalidateQueries({ queryKey: keys.approvals })
      void client.invalidateQueries({ queryKey: keys.deployments })
      void client.invalidateQueries({ queryKey: keys.metrics })
    },
  })
  const busy = decision.isPending ? decision.variables : null
  const decide = (choice: 'approve' | 'reject') => {
    if (choice === 'reject' && !reason.trim()) {
      setError('Give a reason for the rejection: the requester will see it in the audit log.')
      return
    }
    decision.mutate(choice)
  }
  const reasonId = `reason-${a.plan_id}`
  return (
    <li className="flex flex-col gap-3 px-5 py-4 lg:flex-row lg:items-start" data-testid="approval" data-plan-id={a.plan_id} data-endpoint={a.artifact.endpoint_name}>
      <div className="min-w-0 flex-1">
        <p className="font-medium">{a.intent}</p>
        <p className="mt-0.5 text-sm text-gray-600 dark:text-gray-400">
          <span className="font-mono">{a.artifact.endpoint_name}</span> · {a.env.toUpperCase()} · {a.artifact.instance_count} × {a.artifact.instance_type} ·{' '}
          <span data-testid="approval-cost">{usd(a.estimated_usd_per_hour)}/h</span> (budget {usd(a.artifact.budget_usd_per_hour)}/h)
        </p>
        <p className="mt-0.5 text-xs text-gray-500">
          requested by {a.requested_by} {when(a.requested_at)} · expires {when(a.expires_at)} · {a.approvers.length}/{a.approvals_required} approvals
        </p>
        {a.warnings.length > 0 && (
          <ul className="mt-2 space-y-1 text-sm text-yellow-800 dark:text-yellow-300" aria-label="Guardrail findings">
            {a.warnings.map((w, i) => (
              <li key={i}>
                <span className="font-mono text-xs">{w.code}</span> {w.message}
              </li>
            ))}
          </ul>
        )}
        <details className="group mt-1">
          <summary className="flex cursor-pointer items-center gap-1 text-sm text-blue-700 dark:text-blue-400">
            <ChevronDown className="h-4 w-4 transition group-open:rotate-180" aria-hidden /> Plan and evidence ({a.evidence.length} sources)
          </summary>
          <pre className="mt-2 overflow-x-auto rounded-lg bg-gray-50 p-3 text-xs dark:bg-gray-950">{JSON.stringify(a.artifact, null, 2)}</pre>
          <ul className="mt-2 space-y-2">
            {a.evidence.map((e, i) => (
              <li key={i} className="text-sm">
                <p className="font-medium">{e.title}</p>
                <p className="text-gray-600 dark:text-gray-400">{e.snippet}</p>
                {e.url && <p className="font-mono text-xs text-gray-500">Source: {e.url}</p>}
              </li>
            ))}
          </ul>
        </details>
      </div>
      {approver && (
        <div className="w-full lg:w-[27rem]">
          <div className="flex items-center gap-2">
            <label htmlFor={reasonId} className="sr-only">
              Reason for {a.artifact.endpoint_name} (required to reject)
            </label>
            <input
              id={reasonId}
              value={reason}
              onChange={(e) => setReason(e.target.value)}
              maxLength={1000}
              placeholder="Reason (required to reject)"
              className="min-w-0 flex-1 rounded-lg border border-gray-300 bg-white px-3 py-1.5 text-sm dark:border-gray-600 dark:bg-gray-800"
            />
            <button
              type="button"
              onClick={() => void decide('approve')}
              disabled={busy !== null || own || already}
              title={own ? 'You requested this plan: another approver must approve it' : already ? 'You already approved this plan' : undefined}
              className="flex items-center gap-1 rounded-lg bg-green-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-green-700 disabled:cursor-not-allowed disabled:opacity-50"
            >
              {busy === 'approve' ? <Loader2 className="h-4 w-4 animate-spin" aria-hidden /> : <Check className="h-4 w-4" aria-hidden />} Approve
            </button>
            <button
              type="button"
              onClick={() => void decide('reject')}
              disabled={busy !== null}
              className="flex items-center gap-1 rounded-lg border border-red-300 px-3 py-1.5 text-sm font-medium text-red-700 hover:bg-red-50 disabled:opacity-50 dark:border-red-700 dark:text-red-300 dark:hover:bg-red-950"
            >
              {busy === 'reject' ? <Loader2 className="h-4 w-4 animate-spin" aria-hidden /> : <X className="h-4 w-4" aria-hidden />} Reject
            </button>
          </div>
          {own && <p className="mt-1 text-xs text-gray-500">You requested this plan: another approver must approve it (you may still reject it).</p>}
          {already && <p className="mt-1 text-xs text-gray-500">You approved this plan; it waits for another approver.</p>}
          {error && <p role="alert" className="mt-2 text-sm text-red-700 dark:text-red-300">{error}</p>}
        </div>
      )}
    </li>
  )
}
