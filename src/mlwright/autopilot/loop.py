"""The continuous-training loop: from "the data moved" to "a better model serves", by policy.

Each :meth:`Autopilot.step` reads where the model's open rollout stands from the serving store,
gathers the evidence its phase needs, decides with :mod:`mlwright.autopilot.decide`, acts, and
writes the rollout's next phase back. Nothing lives in memory between steps: a loop that is
killed and started again (or run once a minute from cron with ``--once``) goes on from the
store, and every action is safe to repeat (an experiment is started under an id the rollout
fixes, a retrained version is found again by its rollout tag, an alias is set to a version).

A rollout's phases::

    (watching) --trigger--> retraining --> shadow --> experiment --> [approval] --> promoting
        --> probation --> done                          (any phase --reject--> done)

- **watching**: no rollout is open. Monitoring's drift and live metrics of the champion over the
  policy's window, its training scores and the schedule go through the policy's triggers; when
  one fires (and the cooldown after the last rollout is over) a rollout opens.
- **retraining**: the champion's recipe refit on the new rows (or a search), registered as a
  challenger with its lineage (:mod:`mlwright.autopilot.retrain`).
- **shadow**: the server scores a copy of every request with the challenger; it must answer
  like the champion often enough before users see it.
- **experiment**: an A/B at the policy's split with the server's guardrails; the always-valid
  test decides promote or reject.
- **approval**: with ``promote.approval``, promotion waits for `mlwright models approve`.
- **promoting**: the champion alias moves to the challenger and the server swaps it in.
- **probation**: the new champion's live metric must stay near what it showed in the A/B, or
  the alias moves back (rollback).

Every decision is recorded in the store (the timeline of `mlwright monitor`) and as an MLflow
run with its evidence; the version's report in its training run is written again with a
Rollout section listing every decision about it, and why.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlwright.autopilot.client import Server, ServerError
from mlwright.autopilot.decide import (
    Judgement,
    ProbationEvidence,
    TriggerEvidence,
    cooldown_left,
    fired_triggers,
    judge_experiment,
    judge_probation,
    judge_shadow,
)
from mlwright.autopilot.policy import Policy
from mlwright.errors import MlwrightError
from mlwright.store.autopilot import (
    DONE,
    Decision,
    Rollout,
    begin_rollout,
    count_rollouts,
    last_rollout,
    open_rollout,
    record_decision,
    save_rollout,
)

log = logging.getLogger("mlwright.autopilot")

ROLLOUT_TAG = "mlwright.rollout"
APPROVED_TAG = "mlwright.approved_by"
AWAITING_TAG = "mlwright.awaiting_approval"
CHAMPION = "champion"
RELOAD_TRIES, RELOAD_WAIT = 5, 2.0  # a swap already running is waited for this long at most


@dataclass
class StepResult:
    """What one step saw and did: the rollout (None while watching), the decisions it took,
    and a line saying where things stand."""

    rollout: Rollout | None
    decisions: list[Decision] = field(default_factory=list)
    status: str = ""


class Autopilot:
    """The loop for one policy, against one server and its serving store."""

    def __init__(
        self,
        policy: Policy,
        *,
        server: Server,
        store: Path,
        clock: Callable[[], float] = time.time,
        tracking: bool = True,
    ) -> None:
        self.policy = policy
        self.server = server
        self.store = Path(store)
        self.clock = clock
        self.tracking = tracking  # log each decision as an MLflow run
        self._scores: dict[str, dict[str, float]] = {}  # version → its training scores

    @property
    def model(self) -> str:
        return self.policy.model

    # --- the step ---------------------------------------------------------------------------------
    def step(self) -> StepResult:
        """One step: watch for a trigger, or move the open rollout on by one phase at most
        (a trigger goes straight on to retraining in the same step). Two loops on the same
        store and model never step at once: the second one's step does nothing and says so."""
        if not self.store.is_file():
            raise MlwrightError(
                f"no serving store at {self.store}",
                fix="pass the --store file the server writes (`mlwright serve ... --store`)",
            )
        with _step_lock(self.store, self.model) as held:
            if not held:
                return StepResult(None, status="another autopilot step of this model is running")
            return self._step()

    def _step(self) -> StepResult:
        rollout = open_rollout(self.store, self.model)
        result = StepResult(rollout)
        if rollout is None:
            rollout = self._watch(result)
            if rollout is None:
                return result
        phases: dict[str, Callable[[Rollout, StepResult], None]] = {
            "retraining": self._retrain,
            "shadow": self._shadow,
            "experiment": self._experiment,
            "approval": self._approval,
            "promoting": self._promote,
            "probation": self._probation,
        }
        act = phases.get(rollout.phase)
        if act is None:
            self._end(rollout, result, "error", f"unknown phase {rollout.phase!r}; rollout ended")
            return result
        if rollout.phase in ("shadow", "experiment", "approval") and self._superseded(
            rollout, result
        ):
            return result
        act(rollout, result)
        result.rollout = rollout
        return result

    # --- watching -------------------------------------------------------------------------------
    def _watch(self, result: StepResult) -> Rollout | None:
        now = self.clock()
        last = last_rollout(self.store, self.model)
        left = cooldown_left(self.policy, None if last is None else last.updated, now)
        if left > 0:
            result.status = f"cooling down: {left:.0f} s until a new rollout may start"
            return None
        evidence, champion = self._trigger_evidence(now, last)
        fired = fired_triggers(self.policy, evidence, now)
        if not fired:
            live = ", ".join(f"{k} {v:.4g}" for k, v in evidence.live.items()) or "no live metric"
            result.status = (
                f"watching {self.model}/{champion}: no trigger fired ({live} over "
                f"{evidence.labels:,} labels; {evidence.drift_share or 0:.0%} of features drifted)"
            )
            return None
        number = count_rollouts(self.store, self.model) + 1
        rollout = Rollout(
            # unique across stores sharing one registry: the registry finds its version by it
            # (at most 40 + 16 characters: its experiments' ids add 7 within the 64 allowed)
            id=f"{self.model[:40]}-r{number}-{secrets.token_hex(3)}",
            model=self.model,
            phase="retraining",
            state={
                "champion": champion,
                "reason": "; ".join(f.reason for f in fired),
                "trigger": [{"trigger": f.trigger, **f.evidence} for f in fired],
            },
        )
        if not begin_rollout(self.store, rollout):  # another loop opened one first
            result.status = "another loop opened a rollout"
            return None
        self._decide(rollout, result, "trigger", rollout.state["reason"], {"fired": fired})
        return rollout

    def _trigger_evidence(self, now: float, last: Rollout | None) -> tuple[TriggerEvidence, str]:
        from mlwright.errors import ConfigError
        from mlwright.monitor.overview import overview
        from mlwright.monitor.performance import live_performance
        from mlwright.track.mlflow import alias_version, version_facts

        champion = alias_version(self.model, CHAMPION)
        drift: dict[str, dict[str, Any]] = {}
        share = None
        live: dict[str, float] = {}
        labels = 0
        since = now - self.policy.window
        try:
            seen = overview(self.store, model=self.model, since=since).monitored
        except ConfigError:  # no monitored traffic of this model in the store: no drift
            seen = []
        for m in seen:
            if (m.version, m.variant) == (champion, CHAMPION):
                drift = {
                    name: {"psi": f.get("psi"), "drifted": bool(f.get("drifted"))}
                    for name, f in m.drift.get("features", {}).items()
                }
                share = m.drift.get("drift_share")
        for p in live_performance(self.store, model=self.model, since=since):
            if (p["version"], p["variant"]) == (champion, CHAMPION):
                live, labels = dict(p["metrics"]), int(p["feedback"])
        evidence = TriggerEvidence(
            drift=drift,
            drift_share=share,
            live=live,
            labels=labels,
            training=self._training_scores(champion),
            last_rollout_started=None if last is None else last.started,
            champion_registered=version_facts(self.model, champion)["created"],
        )
        return evidence, champion

    def _training_scores(self, version: str) -> dict[str, float]:
        """The champion version's scores at training (its test split's, else the
        cross-validated one), loaded once per version."""
        if version not in self._scores:
            from mlwright.package.loading import load
            from mlwright.track.registry import resolve

            parent = load(f"{self.model}/{version}", resolve=resolve)
            metrics = getattr(parent, "metrics", None) or {}
            scores = metrics.get("test") or {}
            if not scores:  # no test split: the cross-validated score of the chosen metric
                cv = metrics.get("cv") or {}
                scores = {cv.get("metric"): cv.get("mean")}
            self._scores[version] = {
                str(k): float(v) for k, v in scores.items() if isinstance(v, (int, float)) and k
            }
        return self._scores[version]

    # --- retraining -----------------------------------------------------------------------------
    def _retrain(self, rollout: Rollout, result: StepResult) -> None:
        from mlwright.autopilot.retrain import StoreSource, retrain
        from mlwright.track.mlflow import versions_tagged

        state = rollout.state
        found = versions_tagged(self.model, ROLLOUT_TAG, rollout.id)
        if found:  # registered before a restart: the retraining is done
            state["challenger"] = found[-1]
        else:
            spec = self.policy.retrain
            source = None
            if spec.from_store is not None:
                since = self.clock() - spec.from_store.window
                source = StoreSource(self.store, spec.from_store.min_labels, since)
            data: list[Any] = list(spec.data)
            if spec.sql is not None:
                data.append(spec.sql.url)
            result.status = f"retraining {self.model}/{state['champion']} ({spec.mode})"
            try:
                model = retrain(
                    f"{self.model}/{state['champion']}",
                    data=data,
                    sql=None if spec.sql is None else spec.sql.query,
                    from_store=source,
                    search=spec.mode == "search",
                    time_budget=spec.time_budget,
                    reason=state["reason"],
                    trigger={"fired": state["trigger"]},
                    rollout=rollout.id,
                )
            except MlwrightError as exc:
                fix = f" (fix: {exc.fix})" if exc.fix else ""
                self._end(rollout, result, "error", f"retraining failed: {exc.message}{fix}")
                return
            except Exception as exc:  # the loop outlives any failure of one retraining
                log.exception("retraining %s failed", rollout.id)
                self._end(
                    rollout,
                    result,
                    "error",
                    f"retraining failed: {type(exc).__name__}: {str(exc)[:300]} (fix: see the "
                    "autopilot's log; the next trigger retries after the cooldown)",
                )
                return
            state["challenger"] = (model.registry or {}).get("version")
            if state["challenger"] is None:
                self._end(
                    rollout,
                    result,
                    "error",
                    "the retrained model was not registered (fix: track to an MLflow store "
                    "with a model registry: MLFLOW_TRACKING_URI)",
                )
                return
        version = state["challenger"]
        facts = _retrained_facts(self.model, version)
        said = f"retrained {self.model}/{state['champion']} as version {version}"
        if facts.get("cv") is not None:
            said += f" (cross-validated {facts['metric']} {facts['cv']:.4g} on the new rows"
            aged = facts.get("parent_on_new_data")
            if aged is not None:
                said += f"; the champion scores {aged:.4g} on them"
            said += ")"
        rollout.phase = "shadow" if self.policy.shadow is not None else "experiment"
        self._decide(rollout, result, "retrain", said, facts, version=version)
        save_rollout(self.store, rollout)

    # --- shadow and experiment ------------------------------------------------------------------
    def _shadow(self, rollout: Rollout, result: StepResult) -> None:
        judged = self._run_experiment(rollout, result, "shadow")
        if judged is None:
            return
        if judged.action == "pass":
            rollout.phase = "experiment"  # the A/B stops the shadow first (after a restart too)
            self._decide(rollout, result, "shadow", judged.reason, judged.evidence)
            save_rollout(self.store, rollout)
        elif judged.action == "reject":
            self.server.stop(rollout.state["shadow_id"], "the shadow was rejected")
            self._end(rollout, result, "reject", judged.reason, judged.evidence)
        else:
            result.status = judged.reason

    def _experiment(self, rollout: Rollout, result: StepResult) -> None:
        judged = self._run_experiment(rollout, result, "experiment")
        if judged is None:
            return
        if judged.action == "promote":
            # the next phase is written before the experiment stops: a restart in between
            # must not read the stop as a guardrail's
            rollout.state["ab"] = judged.evidence
            if self.policy.promote.approval:
                self._await_approval(rollout, result, judged)
                return
            rollout.phase = "promoting"
            rollout.state["ab_reason"] = judged.reason
            save_rollout(self.store, rollout)
            self._promote(rollout, result)
        elif judged.action == "reject":
            self.server.stop(rollout.state["experiment_id"], "the challenger was rejected")
            self._end(rollout, result, "reject", judged.reason, judged.evidence)
        else:
            result.status = judged.reason

    def _run_experiment(self, rollout: Rollout, result: StepResult, kind: str) -> Judgement | None:
        """Start the rollout's shadow or A/B on the server once, then judge it from the store;
        None when it could not start (the rollout then ended)."""
        from mlwright.experiment.analysis import analyze
        from mlwright.experiment.state import stored_experiment

        state, shadow = rollout.state, kind == "shadow"
        key = "shadow_id" if shadow else "experiment_id"
        state.setdefault(key, f"{rollout.id}-{'shadow' if shadow else 'ab'}")
        exp_id, version = state[key], state["challenger"]
        body: dict[str, Any] = {
            "id": exp_id,
            "challenger": f"{self.model}/{version}",
            "mode": "shadow" if shadow else "split",
            "guardrails": self.policy.experiment.guardrails.model_dump(),
        }
        if not shadow:
            body["weight"] = self.policy.experiment.split
        found = stored_experiment(self.store, exp_id)
        if found is None:
            if not shadow and "shadow_id" in state:  # one experiment at a time on a server
                self.server.stop(state["shadow_id"], "the shadow passed")
            try:
                self.server.start(body)
            except ServerError as exc:
                if exc.status != 409:
                    raise
                self._end(
                    rollout,
                    result,
                    "reject",
                    f"the server refused the {kind}: {exc.message} (the server's log and "
                    f"/v1/experiments/{exp_id} say why)",
                )
                return None
            found = stored_experiment(self.store, exp_id)
            self._decide(
                rollout,
                result,
                kind,
                f"{kind} of {self.model}/{version} started"
                + ("" if shadow else f" at {self.policy.experiment.split:.0%} of the traffic"),
                {"experiment": exp_id, **body},
                version=version,
            )
            save_rollout(self.store, rollout)
        if found is None:  # the server started it, yet this store does not hold it
            raise MlwrightError(
                f"the server started experiment {exp_id!r}, but {self.store} does not hold it",
                fix="pass the --store file the server writes",
            )
        config, started = found["config"], float(found["started"] or self.clock())
        analysis = analyze(self.store, config, config.weights(), since=started)
        now = self.clock()
        if shadow:
            if found["status"] != "running":  # a guardrail stopped the shadow
                why = found["reason"] or "stopped"
                return Judgement("reject", f"the shadow was stopped ({why}); reject", {})
            return judge_shadow(self.policy, analysis, now, started)
        return judge_experiment(
            self.policy, analysis, found["status"], found["reason"], started, now
        )

    def _superseded(self, rollout: Rollout, result: StepResult) -> bool:
        """Whether someone moved the champion alias during the rollout: its A/B would compare
        against another version, and a promotion would undo their choice. The rollout ends."""
        from mlwright.track.mlflow import alias_version

        now = alias_version(self.model, CHAMPION)
        if now == rollout.state["champion"]:
            return False
        for key in ("shadow_id", "experiment_id"):
            if rollout.state.get(key):
                self.server.stop(rollout.state[key], "the champion alias moved")
        self._end(
            rollout,
            result,
            "reject",
            f"{self.model}@{CHAMPION} was moved from version {rollout.state['champion']} to "
            f"{now} during the rollout; rollout ended (a new trigger starts one against {now})",
        )
        return True

    # --- approval, promotion, probation ---------------------------------------------------------
    def _await_approval(self, rollout: Rollout, result: StepResult, judged: Judgement) -> None:
        rollout.phase = "approval"
        rollout.state["approval_since"] = self.clock()
        rollout.state["ab_reason"] = judged.reason
        save_rollout(self.store, rollout)
        self._ask_approval(rollout, result)

    def _ask_approval(self, rollout: Rollout, result: StepResult) -> None:
        """End the A/B, tag the version as awaiting approval and say so (again, after a
        restart that came in between)."""
        from mlwright.track.mlflow import set_version_tags

        version = rollout.state["challenger"]
        self.server.stop(rollout.state["experiment_id"], "awaiting approval to promote")
        set_version_tags(self.model, version, {AWAITING_TAG: rollout.id})
        said = (
            f"{rollout.state['ab_reason']}; waiting for `mlwright models approve {self.model} "
            f"{version}` (the champion serves all traffic meanwhile)"
        )
        rollout.state["asked"] = True
        evidence = rollout.state.get("ab") or {}
        self._decide(rollout, result, "approval", said, evidence, version=version)
        save_rollout(self.store, rollout)

    def _approval(self, rollout: Rollout, result: StepResult) -> None:
        from mlwright.track.mlflow import version_facts

        if not rollout.state.get("asked"):
            self._ask_approval(rollout, result)
            return
        version = rollout.state["challenger"]
        approver = version_facts(self.model, version)["tags"].get(APPROVED_TAG)
        if approver:
            rollout.phase = "promoting"
            rollout.state["approved_by"] = approver
            save_rollout(self.store, rollout)
            self._promote(rollout, result)
            return
        waited = self.clock() - float(rollout.state.get("approval_since") or rollout.updated)
        if waited >= self.policy.experiment.max_duration:
            self._end(
                rollout, result, "reject", f"not approved within {waited / 3600:.3g} h; reject"
            )
            return
        result.status = f"waiting for `mlwright models approve {self.model} {version}`"

    def _promote(self, rollout: Rollout, result: StepResult) -> None:
        """End the A/B, move the champion alias and make the server serve it (each action is
        safe to repeat after a restart in the ``promoting`` phase)."""
        from mlwright.track.mlflow import alias_version, promote

        state = rollout.state
        version = state["challenger"]
        if state.get("experiment_id"):
            self.server.stop(state["experiment_id"], f"promoted {self.model}/{version}")
        state.setdefault("previous", state["champion"])  # written before the alias moves
        save_rollout(self.store, rollout)
        if alias_version(self.model, CHAMPION) != version:
            promote(self.model, version, CHAMPION)
        try:
            swapped = self._reload()
        except ServerError as exc:
            if exc.status is None:  # unreachable: the next step tries again
                raise
            promote(self.model, state["previous"], CHAMPION)  # the server refused it
            self._end(
                rollout,
                result,
                "error",
                f"the server refused to serve {self.model}/{version} ({exc.message}); "
                f"{self.model}@{CHAMPION} is back on version {state['previous']} (fix: see the "
                "server's /ready and log)",
            )
            return
        ab = state.get("ab") or {}
        if ab.get("treatment"):
            state["expected"] = {"metric": ab["metric"], "value": float(ab["treatment"]["mean"])}
        state["promoted_at"] = self.clock()
        rollout.phase = "probation"
        said = str(state.get("ab_reason") or "promoted")
        if state.get("approved_by"):
            said += f" (approved by {state['approved_by']})"
        said = f"{self.model}@{CHAMPION} → version {version} (was {state.get('previous')}): {said}"
        evidence = {"server": swapped, "previous": state.get("previous"), "ab": ab}
        self._decide(rollout, result, "promote", said, evidence, version=version)
        save_rollout(self.store, rollout)

    def _reload(self) -> dict[str, Any]:
        """Have the server serve ``NAME@champion``; a swap it is already running (it follows the
        alias) is waited for, not taken as a refusal."""
        for _ in range(RELOAD_TRIES - 1):
            try:
                return self.server.reload(f"{self.model}@{CHAMPION}")
            except ServerError as exc:
                if exc.body.get("status") != "busy":
                    raise
            time.sleep(RELOAD_WAIT)
        return self.server.reload(f"{self.model}@{CHAMPION}")

    def _probation(self, rollout: Rollout, result: StepResult) -> None:
        from mlwright.track.mlflow import promote

        state = rollout.state
        version, started = state["challenger"], float(state["promoted_at"])
        expected = state.get("expected")
        if expected is None:  # promoted without an A/B figure to hold it to
            self._end(rollout, result, "keep", "promoted; no A/B figure to hold it to")
            return
        metric = str(expected["metric"])
        seen = self._outcomes_since(version, metric, started)
        live = float(np.mean(seen)) if seen else None
        sd = float(np.std(seen, ddof=1)) if len(seen) > 1 else None
        evidence = ProbationEvidence(metric, float(expected["value"]), live, len(seen), sd)
        judged = judge_probation(self.policy, evidence, self.clock(), started)
        if judged.action == "wait":
            result.status = judged.reason
            return
        if judged.action == "rollback":
            promote(self.model, state["previous"], CHAMPION)
            judged = Judgement(
                "rollback",
                f"{judged.reason}: {self.model}@{CHAMPION} → version {state['previous']}",
                {**judged.evidence, "server": self._reload()},
            )
        self._end(rollout, result, judged.action, judged.reason, judged.evidence)

    def _outcomes_since(self, version: str, metric: str, since: float) -> list[float]:
        """The champion ``version``'s outcomes on ``metric`` (the A/B's scale), one per
        labelled prediction made since ``since``."""
        from mlwright.store.feedback import feedback_of_model, outcomes

        found = []
        for _, v, variant, _, answer, kind, value in feedback_of_model(
            self.store, model=self.model, since=since
        ):
            if (v, variant) != (version, CHAMPION) or answer is None:
                continue
            found += [x for m, x in outcomes(answer, kind, value) if m == metric]
        return found

    # --- bookkeeping ----------------------------------------------------------------------------
    def _end(
        self,
        rollout: Rollout,
        result: StepResult,
        action: str,
        reason: str,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        rollout.state["outcome"] = action
        rollout.state["ended_in"] = rollout.phase
        rollout.phase = DONE
        self._decide(
            rollout, result, action, reason, evidence or {}, version=rollout.state.get("challenger")
        )
        save_rollout(self.store, rollout)
        result.status = reason

    def _decide(
        self,
        rollout: Rollout,
        result: StepResult,
        action: str,
        reason: str,
        evidence: dict[str, Any],
        *,
        version: str | None = None,
    ) -> None:
        """Record a decision in the store and as an MLflow run (and in the version's own run)."""
        from mlwright.experiment.analysis import json_safe

        safe = json_safe(evidence)
        run_id = self._log_run(rollout, action, reason, safe, version) if self.tracking else None
        decision = Decision(
            model=self.model,
            action=action,
            reason=reason,
            evidence=safe,
            rollout=rollout.id,
            version=version,
            run_id=run_id,
            ts=self.clock(),
        )
        record_decision(self.store, decision)
        result.decisions.append(decision)
        result.status = reason
        log.info("%s %s: %s", rollout.id, action, reason)

    def _log_run(
        self,
        rollout: Rollout,
        action: str,
        reason: str,
        evidence: dict[str, Any],
        version: str | None,
    ) -> str | None:
        from mlwright.track.mlflow import log_decision

        tags = {
            "mlwright.autopilot.action": action,
            ROLLOUT_TAG: rollout.id,
            "mlwright.model": self.model,
        }
        if version is not None:
            tags["mlwright.version"] = version
        try:
            run_id = log_decision(
                f"{self.model}-autopilot", f"{action} {rollout.id}", reason, evidence, tags
            )
            if version is not None:
                now = {
                    "ts": self.clock(),
                    "rollout": rollout.id,
                    "action": action,
                    "reason": reason,
                }
                self._write_report(rollout, version, now)
            return run_id
        except MlwrightError as exc:  # tracking down: the store still records the decision
            log.warning("could not log the decision to MLflow: %s", exc.message)
            return None

    def _write_report(self, rollout: Rollout, version: str, latest: dict[str, Any]) -> None:
        """The version's ML Solution report with its Rollout section (every decision so far,
        and why), written over the report in the version's training run."""
        import tempfile

        from mlwright.package.loading import load, tabular
        from mlwright.report import Report
        from mlwright.report.document import write
        from mlwright.store.autopilot import decisions
        from mlwright.track.mlflow import log_files, version_facts
        from mlwright.track.registry import resolve

        training_run = version_facts(self.model, version)["run_id"]
        if not training_run:
            return
        earlier = [d for d in decisions(self.store, model=self.model) if d["rollout"] == rollout.id]
        model = tabular(load(f"{self.model}/{version}", resolve=resolve), "a rollout's report")
        report = Report.of(model, f"{self.model}/{version}", rollout=[*earlier, latest])
        with tempfile.TemporaryDirectory(prefix="mlwright-rollout-") as tmp:
            folder = Path(tmp)
            write(report.document, folder / "report.md")
            (folder / "report.html").write_text(report.html(), encoding="utf-8")
            log_files(training_run, folder, "report")


@contextmanager
def _step_lock(store: Path, model: str) -> Iterator[bool]:
    """An exclusive lock on ``STORE.autopilot-MODEL.lock`` for one step; yields False at
    once when another process holds it (two cron runs of ``--once`` that overlap)."""
    import fcntl

    path = store.with_name(f"{store.name}.autopilot-{model}.lock")
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _retrained_facts(model: str, version: str) -> dict[str, Any]:
    """The retrained version's score on the new rows, and its parent's on the same rows."""
    from mlwright.package.loading import load
    from mlwright.track.registry import resolve

    loaded = load(f"{model}/{version}", resolve=resolve)
    recipe = loaded.recipe
    lineage = getattr(recipe, "lineage", None)
    facts: dict[str, Any] = {"version": version}
    cv = getattr(recipe, "cv", None)
    if cv is not None:
        facts.update(metric=cv.metric, cv=cv.mean)
    if lineage is not None:
        aged = lineage.parent_on_new_data or {}
        facts.update(
            parent_on_new_data=aged.get("value"),
            sources=lineage.sources,
            mode=lineage.mode,
        )
    return facts
