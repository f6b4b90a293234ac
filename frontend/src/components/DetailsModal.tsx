import { useQuery } from '@tanstack/react-query'
import { ExternalLink } from 'lucide-react'
import type { ReactNode } from 'react'
import type { HistoryEvent, PlanDetail } from '../lib/api'
import { useSession } from '../lib/context'
import { usd, when } from '../lib/format'
import { Modal } from './Modal'
import { ScheduleSection } from './ScheduleSection'
import { describeRules } from './SchedulesPanel'
import { StatusBadge } from './StatusBadge'
import { keys } from '../lib/keys'

function Section({ title, children, testid }: { title: string; children: ReactNode; testid?: string }) {
  return (
    <section className="mt-5 first:mt-0" data-testid={testid}>
      <h3 className="mb-2 text-sm font-semibold uppercase tracking-wide text-gray-500 dark:text-gray-400">{title}</h3>
      {children}
    </section>
  )
}

function Json({ value }: { value: unknown }) {
  return <pre className="overflow-x-auto rounded-lg bg-gray-50 p-3 text-xs leading-relaxed dark:bg-gray-950">{JSON.stringify(value, null, 2)}</pre>
}

/** One line that says what an event did, for the timeline. */
export function describe(event: HistoryEvent): string {
  const d = event.data as Record<string, any>
  switch (event.type) {
    case 'intent.received':
      return `Command received: “${d.command}” (${d.env ?? 'env from command'})`
    case 'plan.proposed':
      return `Plan proposed by the ${d.planner ?? 'rules'} planner: ${d.config?.instance_count} × ${d.config?.instance_type}`
    case 'plan.failed':
      return `Planning failed: ${d.reason}`
    case 'plan.rejected':
      return `Guardrails refused the plan: ${(d.errors ?? []).map((e: { message: string }) => e.message).join('; ')}`
    case 'approval.requested':
      return `Approval requested (${d.approvals_required ?? 1} approver${(d.approvals_required ?? 1) > 1 ? 's' : ''} needed)`
    case 'approval.decided':
      return `Approval ${d.decision} by ${d.approver}${d.reason ? `: ${d.reason}` : ''}`
    case 'deployment.requested':
      return 'Guardrails passed: deployment requested'
    case 'deployment.action':
      return `${String(d.action).charAt(0).toUpperCase()}${String(d.action).slice(1)} requested by ${d.requested_by}${d.reason ? `: ${d.reason}` : ''}`
    case 'schedule.set':
      return `Schedule set by ${d.set_by}: ${describeRules({ schedule: d.rules?.schedule ?? null, idle_pause_minutes: d.rules?.idle_pause_minutes ?? null })}`
    case 'deployment.status':
      return `Status ${d.status}${d.reason ? `: ${d.reason}` : ''}`
    case 'deployment.changed':
      return `Reported to the guardian: ${d.status}${d.reason ? `: ${d.reason}` : ''}`
    default:
      return event.type
  }
}

export function DetailsModal({ planId, onClose }: { planId: string; onClose: () => void }) {
  const { api } = useSession()
  const detail = useQuery({ queryKey: keys.plan(planId), queryFn: () => api.deployment(planId) })
  const history = useQuery({ queryKey: keys.planHistory(planId), queryFn: () => api.history(planId) })
  const cost = useQuery({ queryKey: keys.planCost(planId), queryFn: () => api.cost(planId), refetchInterval: 60_000 })
  const plan = detail.data?.plan
  const title = plan?.artifact?.endpoint_name ?? plan?.intent ?? 'Deployment'
  return (
    <Modal title={<span className="font-mono">{title}</span>} onClose={onClose}>
      {detail.isPending && <p className="text-sm text-gray-500">Loading…</p>}
      {detail.isError && <p role="alert" className="text-sm text-red-600">{(detail.error as Error).message}</p>}
      {detail.data && <Body detail={detail.data} />}
      {plan && !['validation_failed', 'rejected', 'deleted', 'planning'].includes(plan.status) && (
        <Section title="When it runs" testid="details-schedule">
          <ScheduleSection planId={planId} />
        </Section>
      )}
      {plan && (
        <Section title="Cost so far" testid="details-cost">
          {cost.data ? (
            <p className="text-sm">
              <strong data-testid="cost-so-far">{usd(cost.data.usd, 4)}</strong> at {usd(cost.data.usd_per_hour)}/h{cost.data.running ? ' (running)' : ''}
              {cost.data.estimated && <span className="text-gray-500"> · estimated: {cost.data.basis}</span>}
            </p>
          ) : (
            <p className="text-sm text-gray-500">{cost.isError ? (cost.error as Error).message : 'Loading…'}</p>
          )}
        </Section>
      )}
      {plan && (
        <Section title="Timeline" testid="details-timeline">
          {history.data ? (
            <ol className="relative ml-2 border-l border-gray-200 dark:border-gray-700">
              {history.data.map((e) => (
                <li key={e.seq} className="mb-3 ml-4" data-event-type={e.type}>
                  <span className="absolute -left-1.5 mt-1.5 h-3 w-3 rounded-full border border-white bg-blue-500 dark:border-gray-900" aria-hidden />
                  <p className="text-sm">{describe(e)}</p>
                  <p className="text-xs text-gray-500">
                    {when(e.occurred_at)} · {e.actor} · <span className="font-mono">{e.type}</span> · #{e.seq}
                  </p>
                </li>
              ))}
            </ol>
          ) : (
            <p className="text-sm text-gray-500">{history.isError ? (history.error as Error).message : 'Loading…'}</p>
          )}
        </Section>
      )}
    </Modal>
  )
}

function Body({ detail }: { detail: PlanDetail }) {
  const { plan } = detail
  const d = plan.details ?? {}
  const findings = d.findings ?? []
  const calls = d.sagemaker_calls ?? []
  const dryRun = d.mode === 'dry-run'
  return (
    <>
      <Section title="Summary" testid="details-summary">
        <dl className="grid grid-cols-1 gap-x-6 gap-y-2 text-sm sm:grid-cols-2">
          <Row label="Status"><StatusBadge status={plan.status} /></Row>
          <Row label="Environment">{plan.env.toUpperCase()}</Row>
          <Row label="Intent">{plan.intent}</Row>
          <Row label="Requested by">{plan.user_id}</Row>
          <Row label="Model">{plan.artifact?.model_name ?? d.model_id ?? '—'}</Row>
          <Row label="Instance">{plan.artifact ? `${plan.artifact.instance_count} × ${plan.artifact.instance_type}` : '—'}</Row>
          <Row label="Budget">{plan.artifact ? `${usd(plan.artifact.budget_usd_per_hour)}/h` : '—'}</Row>
          <Row label="Estimated">{d.estimated_usd_per_hour !== undefined ? `${usd(d.estimated_usd_per_hour)}/h` : '—'}</Row>
          <Row label="Planner">{d.planner ?? '—'}</Row>
          <Row label="Executor mode">{d.mode ?? '—'}</Row>
          <Row label="Smoke test">
            <span data-testid="smoke-test">
              {d.smoke
                ? `${d.smoke.outcome}${d.smoke.latency_ms != null ? `, ${d.smoke.latency_ms} ms` : ''}${d.smoke.detail ? ` (${d.smoke.detail})` : ''}`
                : '—'}
            </span>
          </Row>
          <Row label="Created">{when(plan.created_at)}</Row>
          <Row label="Updated">{when(plan.updated_at)}</Row>
        </dl>
        {d.change && (
          <p data-testid="last-change" className="mt-2 text-sm">
            Last {d.change.operation}: {d.change.before.model_name} on {d.change.before.instance_count} × {d.change.before.instance_type} →{' '}
            {d.change.after.model_name} on {d.change.after.instance_count} × {d.change.after.instance_type} ({d.change.strategy.shift.replace(/_/g, ' ')}
            {d.change.strategy.shift !== 'all_at_once' ? ` ${d.change.strategy.percent}%` : ''}, {d.change.strategy.wait_seconds} s a step)
            {d.change.cost_delta_usd_per_hour != null ? `, ${d.change.cost_delta_usd_per_hour >= 0 ? '+' : '−'}${usd(Math.abs(d.change.cost_delta_usd_per_hour))}/h` : ''}
          </p>
        )}
        {plan.status === 'rolled_back' && d.reason && (
          <p role="status" data-testid="rollback-reason" className="mt-2 text-sm text-orange-700 dark:text-orange-400">
            Rolled back: {d.reason}
          </p>
        )}
        {plan.status === 'failed' && d.reason && (
          <p role="status" data-testid="failure-reason" className="mt-2 text-sm text-red-600">
            Failed: {d.reason}
          </p>
        )}
      </Section>
      <Section title="Configuration" testid="details-config">
        {plan.artifact ? <Json value={plan.artifact} /> : <p className="text-sm text-gray-500">No configuration: the command did not produce a plan.</p>}
      </Section>
      {(d.history?.length ?? 0) > 0 && (
        <Section title="Configuration history" testid="details-history">
          <ol className="space-y-1 text-sm">
            {d.history!.map((r, i) => (
              <li key={i} data-outcome={r.outcome}>
                {when(r.at)} · {r.operation} · {r.config.model_name} on {r.config.instance_count} × {r.config.instance_type} · {r.outcome.replace(/_/g, ' ')}
                {r.reason ? <span className="text-gray-500"> ({r.reason})</span> : null}
              </li>
            ))}
          </ol>
        </Section>
      )}
      {(d.assumptions?.length ?? 0) > 0 && (
        <Section title="Why this plan">
          <ul className="list-disc space-y-1 pl-5 text-sm">{d.assumptions!.map((a) => <li key={a}>{a}</li>)}</ul>
        </Section>
      )}
      <Section title="Guardrail findings" testid="details-findings">
        {findings.length === 0 && plan.validation_errors.length === 0 ? (
          <p className="text-sm text-green-700 dark:text-green-400">No findings: every guardrail passed.</p>
        ) : (
          <ul className="space-y-1 text-sm">
            {findings.map((f, i) => (
              <li key={i} className={f.severity === 'warning' ? 'text-yellow-700 dark:text-yellow-400' : 'text-red-700 dark:text-red-400'}>
                <span className="font-mono text-xs">{f.code}</span> {f.message}
              </li>
            ))}
            {findings.length === 0 && plan.validation_errors.map((e) => <li key={e} className="text-red-700 dark:text-red-400">{e}</li>)}
          </ul>
        )}
      </Section>
      <Section title="Evidence" testid="details-evidence">
        {plan.evidence.length === 0 ? (
          <p className="text-sm text-gray-500">No policy evidence was retrieved.</p>
        ) : (
          <ul className="space-y-3">
            {plan.evidence.map((e, i) => (
              <li key={i} className="rounded-lg border border-gray-200 p-3 text-sm dark:border-gray-700">
                <p className="font-medium">{e.title}</p>
                <p className="mt-1 text-gray-600 dark:text-gray-400">{e.snippet}</p>
                {e.url && (
                  <p className="mt-1 flex items-center gap-1 text-xs text-blue-700 dark:text-blue-400">
                    <ExternalLink className="h-3 w-3" aria-hidden /> Source: <span className="font-mono">{e.url}</span>
                  </p>
                )}
              </li>
            ))}
          </ul>
        )}
      </Section>
      <Section title={dryRun ? 'SageMaker calls dry-run would make' : 'SageMaker calls made'} testid="details-calls">
        {calls.length === 0 ? (
          <p className="text-sm text-gray-500">No calls: the plan never reached the executor.</p>
        ) : (
          <ol className="space-y-2">
            {calls.map((c, i) => (
              <li key={i}>
                <details className="rounded-lg border border-gray-200 dark:border-gray-700">
                  <summary className="cursor-pointer px-3 py-2 text-sm">
                    {i + 1}. <span className="font-mono">{c.service ?? 'sagemaker'}:{c.operation}</span>
                  </summary>
                  <div className="px-3 pb-3"><Json value={c.params ?? {}} /></div>
                </details>
              </li>
            ))}
          </ol>
        )}
      </Section>
    </>
  )
}

function Row({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="flex gap-2">
      <dt className="w-32 shrink-0 text-gray-500 dark:text-gray-400">{label}</dt>
      <dd className="min-w-0 break-words">{children}</dd>
    </div>
  )
}
