import { useState } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { Loader2 } from 'lucide-react'
import type { Plan } from '../lib/api'
import { can, useSession } from '../lib/context'
import { IN_PROGRESS, when } from '../lib/format'
import { ActionsMenu, actionsFor, type RowAction } from './ActionsMenu'
import { ConfirmDialog } from './ConfirmDialog'
import { DetailsModal } from './DetailsModal'
import { StatusBadge } from './StatusBadge'
import { useToast } from './Toasts'
import { keys } from '../lib/keys'

/** Polling when the live stream is down: every 5 s while anything is in progress, else 60 s. */
export function pollInterval(plans: Plan[] | undefined, live: boolean): number | false {
  if (live) return 60_000
  return plans?.some((p) => IN_PROGRESS.includes(p.status)) ? 5_000 : 60_000
}

export function DeploymentTable({ live }: { live: boolean }) {
  const { api, me } = useSession()
  const toast = useToast()
  const client = useQueryClient()
  const [details, setDetails] = useState<string | null>(null)
  const [deleting, setDeleting] = useState<Plan | null>(null)
  const query = useQuery({
    queryKey: keys.deployments,
    queryFn: api.deployments,
    refetchInterval: (q) => pollInterval(q.state.data?.deployments, live),
  })
  const plans = query.data?.deployments ?? []
  const canDeploy = can(me, 'deployer')

  const refresh = () => {
    void client.invalidateQueries({ queryKey: keys.deployments })
    void client.invalidateQueries({ queryKey: keys.metrics })
  }
  const lifecycle = useMutation({
    mutationFn: ({ plan, action }: { plan: Plan; action: 'pause' | 'restart' }) =>
      action === 'pause' ? api.pause(plan.plan_id) : api.restart(plan.plan_id),
    onSuccess: (_answer, { plan, action }) => {
      const name = plan.artifact?.endpoint_name ?? plan.plan_id
      toast(`${action === 'pause' ? 'Pause' : 'Restart'} requested for ${name}`, { variant: 'success' })
    },
    onError: (e, { plan, action }) => {
      const name = plan.artifact?.endpoint_name ?? plan.plan_id
      toast((e as Error).message, { variant: 'error', title: `Could not ${action} ${name}` })
    },
    onSettled: refresh,
  })
  const removal = useMutation({ mutationFn: (plan: Plan) => api.remove(plan.plan_id), onSettled: refresh })
  const act = (plan: Plan, action: RowAction) => {
    if (action === 'details') return setDetails(plan.plan_id)
    if (action === 'delete') return setDeleting(plan)
    lifecycle.mutate({ plan, action })
  }

  return (
    <section aria-labelledby="deployments-title" className="rounded-xl border border-gray-200 bg-white shadow-sm dark:border-gray-800 dark:bg-gray-900">
      <div className="flex items-center justify-between border-b border-gray-200 px-5 py-3 dark:border-gray-800">
        <h2 id="deployments-title" className="font-semibold">
          Deployments {query.data && <span className="text-sm font-normal text-gray-500">({query.data.count})</span>}
        </h2>
        {query.isFetching && <Loader2 className="h-4 w-4 animate-spin text-gray-400" aria-label="Refreshing" />}
      </div>
      {query.isError && (
        <p role="alert" className="px-5 py-4 text-sm text-red-700 dark:text-red-300">
          Could not load deployments: {(query.error as Error).message}
        </p>
      )}
      <div className="overflow-x-auto">
        <table className="w-full min-w-[760px] text-left text-sm" data-testid="deployments">
          <thead className="bg-gray-50 text-xs uppercase tracking-wide text-gray-500 dark:bg-gray-800/60 dark:text-gray-400">
            <tr>
              <th scope="col" className="px-5 py-2 font-medium">Intent</th>
              <th scope="col" className="px-3 py-2 font-medium">Endpoint</th>
              <th scope="col" className="px-3 py-2 font-medium">Environment</th>
              <th scope="col" className="px-3 py-2 font-medium">Instance</th>
              <th scope="col" className="px-3 py-2 font-medium">Status</th>
              <th scope="col" className="px-3 py-2 font-medium">Created</th>
              <th scope="col" className="px-3 py-2 font-medium"><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody className="divide-y divide-gray-100 dark:divide-gray-800">
            {plans.map((plan) => (
              <tr key={plan.plan_id} data-plan-id={plan.plan_id} data-endpoint={plan.artifact?.endpoint_name ?? ''} className="hover:bg-gray-50 dark:hover:bg-gray-800/40">
                <td className="max-w-[22rem] truncate px-5 py-3" title={plan.intent}>{plan.intent}</td>
                <td className="px-3 py-3 font-mono text-xs">{plan.artifact?.endpoint_name ?? '—'}</td>
                <td className="px-3 py-3">
                  <span className={plan.env === 'prod' ? 'rounded bg-purple-100 px-2 py-0.5 text-xs font-semibold text-purple-800 dark:bg-purple-900/40 dark:text-purple-300' : 'rounded bg-gray-100 px-2 py-0.5 text-xs font-semibold text-gray-700 dark:bg-gray-800 dark:text-gray-300'}>
                    {plan.env.toUpperCase()}
                  </span>
                </td>
                <td className="px-3 py-3 text-xs">{plan.artifact ? `${plan.artifact.instance_type} × ${plan.artifact.instance_count}` : '—'}</td>
                <td className="px-3 py-3">
                  <StatusBadge status={plan.status} />
                  {plan.reason && (
                    <p data-testid="row-reason" className="mt-1 max-w-xs truncate text-xs text-red-600 dark:text-red-400" title={plan.reason}>
                      {plan.reason}
                    </p>
                  )}
                </td>
                <td className="whitespace-nowrap px-3 py-3 text-xs text-gray-500 dark:text-gray-400">{when(plan.created_at)}</td>
                <td className="px-3 py-3 text-right">
                  <ActionsMenu plan={plan} actions={actionsFor(plan, canDeploy)} onAction={(a) => act(plan, a)} />
                </td>
              </tr>
            ))}
            {query.isSuccess && plans.length === 0 && (
              <tr>
                <td colSpan={7} className="px-5 py-10 text-center text-gray-500">
                  No deployments yet. {canDeploy ? 'Type a command below, e.g. “deploy llama-3.1 8B for chatbot-x”.' : ''}
                </td>
              </tr>
            )}
            {query.isPending && (
              <tr>
                <td colSpan={7} className="px-5 py-10 text-center text-gray-500">Loading deployments…</td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {details && <DetailsModal planId={details} onClose={() => setDetails(null)} />}
      {deleting && (
        <ConfirmDialog
          title="Delete deployment"
          confirmLabel="Delete"
          message={
            <>
              Delete <strong className="font-mono">{deleting.artifact?.endpoint_name ?? deleting.plan_id}</strong> ({deleting.env})? The
              SageMaker endpoint, its configuration and model are removed. The audit log keeps its history.
            </>
          }
          onConfirm={async () => {
            await removal.mutateAsync(deleting) // a refusal is shown by the dialog
            toast(`Delete requested for ${deleting.artifact?.endpoint_name ?? deleting.plan_id}`, { variant: 'success' })
          }}
          onClose={() => setDeleting(null)}
        />
      )}
    </section>
  )
}
