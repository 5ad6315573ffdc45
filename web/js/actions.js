// Deployment actions shared by the list and the deployment page.
import { post, patch } from './api.js';
import { actionMenu, confirmDialog, formDialog, toast, errMsg, CAN_START, CAN_STOP, CAN_ARCHIVE } from './ui.js';

const enc = encodeURIComponent;

export async function startDeployment(d, after) {
  try {
    await post(`/deployments/${enc(d.id)}/start`);
    toast(`Starting ${d.name}.`);
    after && after();
  } catch (e) {
    toast(errMsg(e), 'error');
  }
}

export async function stopDeployment(d, after) {
  const ok = await confirmDialog({
    title: 'Stop deployment?',
    message: `Stop ${d.name}? Its queued jobs are withdrawn and running jobs are stopped; the endpoint stops serving.`,
    okLabel: 'Stop Deployment',
    danger: true,
  });
  if (!ok) return;
  try {
    await post(`/deployments/${enc(d.id)}/stop`);
    toast(`Stopping ${d.name}.`);
    after && after();
  } catch (e) {
    toast(errMsg(e), 'error');
  }
}

export async function archiveDeployment(d, after) {
  const ok = await confirmDialog({
    title: 'Archive deployment?',
    message: `Archive ${d.name}? This cannot be undone: an archived deployment is read-only and cannot be started again.`,
    okLabel: 'Archive',
    danger: true,
  });
  if (!ok) return;
  try {
    await post(`/deployments/${enc(d.id)}/archive`);
    toast(`${d.name} archived.`);
    after && after();
  } catch (e) {
    toast(errMsg(e), 'error');
  }
}

export async function updateReplicas(d, after) {
  const v = await formDialog({
    title: 'Update replicas',
    description: 'Upscaling lists new jobs at once; downscaling stops queued, then not-ready, then the oldest jobs.',
    fields: [{ name: 'replicas', label: 'Replica count', type: 'number', value: d.replicas, min: 0, max: 100, step: 1, testid: 'update-replicas-input',
      validate: (n, raw) => (raw === '' || !Number.isInteger(n) || n < 0 || n > 100 ? 'Replicas must be a whole number from 0 to 100.' : null) }],
    okLabel: 'Update Replicas',
    submit: (vals) => patch(`/deployments/${enc(d.id)}/update-replica-count`, { replicas: vals.replicas }),
  });
  if (v) {
    toast(`Replicas set to ${v.replicas}.`);
    after && after();
  }
}

export async function updateTimeout(d, after) {
  const minH = d.strategy === 'INFINITE' ? 1 : 0.02;
  const v = await formDialog({
    title: 'Update timeout',
    description: 'Used for new jobs. Running Simple Extend and Infinite jobs are extended once by an increase; running jobs are never shortened.',
    fields: [{ name: 'hours', label: 'Container timeout (hours)', type: 'number', value: Math.round((d.timeout / 60) * 100) / 100, min: minH, max: 100, step: 0.01, testid: 'update-timeout-input',
      help: d.strategy === 'INFINITE' ? 'Infinite deployments need at least 1 hour.' : 'From 0.02 (about 1 minute) to 100 hours.',
      validate: (n, raw) => (raw === '' || !Number.isFinite(n) || n < minH || n > 100 ? `Timeout must be between ${minH} and 100 hours.` : null) }],
    okLabel: 'Update Timeout',
    submit: (vals) => patch(`/deployments/${enc(d.id)}/update-timeout`, { timeout: Math.max(1, Math.round(vals.hours * 60)) }),
  });
  if (v) {
    toast(`Timeout set to ${v.hours} h.`);
    after && after();
  }
}

export async function updateSchedule(d, after) {
  const v = await formDialog({
    title: 'Update schedule',
    description: '5-field cron in UTC: minute hour day-of-month month day-of-week.',
    fields: [{ name: 'schedule', label: 'Schedule (cron, UTC)', type: 'text', value: d.schedule || '0 * * * *', testid: 'update-schedule-input',
      validate: (s) => (String(s).trim().split(/\s+/).length !== 5 ? 'A cron schedule has 5 fields.' : null) }],
    okLabel: 'Update Schedule',
    submit: (vals) => patch(`/deployments/${enc(d.id)}/update-schedule`, { schedule: vals.schedule.trim() }),
  });
  if (v) {
    toast('Schedule updated.');
    after && after();
  }
}

// The Actions menu of a deployment. extra: {onCreateRevision} adds the deployment page's items.
export function deploymentActions(d, { after, onCreateRevision } = {}) {
  const archived = d.status === 'ARCHIVED';
  return actionMenu({
    label: 'Actions',
    testid: 'actions-menu',
    items: [
      { label: 'Start', testid: 'action-start', disabled: !CAN_START.includes(d.status), onSelect: () => startDeployment(d, after) },
      { label: 'Stop Deployment', testid: 'action-stop', danger: true, disabled: !CAN_STOP.includes(d.status), onSelect: () => stopDeployment(d, after) },
      { label: 'Archive', testid: 'action-archive', danger: true, disabled: !CAN_ARCHIVE.includes(d.status), onSelect: () => archiveDeployment(d, after) },
      { label: 'Update Replicas', testid: 'action-update-replicas', disabled: archived, onSelect: () => updateReplicas(d, after) },
      { label: 'Update Timeout', testid: 'action-update-timeout', disabled: archived, onSelect: () => updateTimeout(d, after) },
      { label: 'Update Schedule', testid: 'action-update-schedule', hidden: !onCreateRevision || d.strategy !== 'SCHEDULED', disabled: archived, onSelect: () => updateSchedule(d, after) },
      { label: 'Create Revision', testid: 'action-create-revision', hidden: !onCreateRevision, disabled: archived, onSelect: () => onCreateRevision && onCreateRevision() },
    ],
  });
}
