import clsx from 'clsx'
import type { PlanStatus } from '../lib/api'
import { STATUS_LABEL, STATUS_TONE } from '../lib/format'

export function StatusBadge({ status }: { status: PlanStatus }) {
  return (
    <span data-status={status} className={clsx('inline-flex items-center whitespace-nowrap rounded-full px-2.5 py-0.5 text-xs font-medium', STATUS_TONE[status])}>
      {STATUS_LABEL[status] ?? status}
    </span>
  )
}
