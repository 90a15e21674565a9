"""The whole RLHF loop as resumable stages: SFT, preferences, reward, agent, evaluation, report.

Each stage reads what earlier stages wrote (HF-format checkpoints, JSONL, JSON) from the output
directory, so a rerun skips finished stages and ``--force STAGE`` redoes one and its dependents.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlhf_gym.distributed import DataParallel, launched_processes
from rlhf_gym.models import PRESETS, layer_count, load_model, load_tokenizer
from rlhf_gym.models.freezing import trainable_parameter_count
from rlhf_gym.pipeline.agents import make_agent
from rlhf_gym.pipeline.config import RunConfig, setting_defaults
from rlhf_gym.pipeline.evaluate import evaluate_run
from rlhf_gym.pipeline.outputs import RunOutputs, reward_member_dirs
from rlhf_gym.pipeline.report import write_run_report
from rlhf_gym.pipeline.stages import Stage, StageError, StageRunner, agent_stage
from rlhf_gym.preferences.io import load_preferences, write_jsonl
from rlhf_gym.seeding import derived_seed, numpy_rng
from rlhf_gym.tasks import Task, get_task

SHIPPED_REWARD_TRUNK = "sentiment-rm"
"""``reward_backbone`` name of the shipped sentiment reward model: its tiny trunk, pretrained on
simulated preferences over the project's review corpus, gets a new head and is fine-tuned."""
POLICY_TRUNK = "policy"
"""``reward_backbone`` value for the policy's own trunk (after SFT, the fine-tuned one)."""


FINGERPRINT_DEFAULTS = {
    **setting_defaults(),
    "human_labels_sha256": None,
    "trainer": {"mixed_precision": "no"},
}
"""What a stage finished by an older version, whose fingerprint lacks a key, was made with: each
setting's default, no human labels, and the reward trainer's settings added since."""
RETIRED_SETTINGS = {
    "ppo_epochs": "num_ppo_epochs",
    "num_minibatches": "num_mini_batches",
    "trainer": {"device": None, "progress_bar": None, "num_epochs": "num_train_epochs"},
}
"""Settings of older fingerprints: ppo_epochs, num_minibatches and the reward trainer's num_epochs
were renamed; the reward trainer's device (now the data-parallel process's) and whether a
progress bar showed no longer change the output."""


@dataclass
class Pipeline:
    """Builds the stages of one run; each stage's function writes into its own directory."""

    config: RunConfig
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        self.task: Task = get_task(self.config.task)
        self.runner = StageRunner(
            self.config.output_dir, self._stages(), log=self.log, defaults=FINGERPRINT_DEFAULTS,
            retired=RETIRED_SETTINGS,
            processes=DataParallel() if launched_processes() > 1 else None,
        )  # fmt: skip
        self.outputs = RunOutputs(self.config, self.task, self.runner)

    def run(self, force: tuple[str, ...] = ()) -> Path:
        """Run every unfinished stage; returns the report's path.

        ``force`` names stages to redo with their dependents; ``"agent"`` means every agent.
        """
        self.check()
        agent_names = [agent_stage(name) for name in self.config.agents]
        force = tuple(n for name in force for n in (agent_names if name == "agent" else [name]))
        torch.manual_seed(derived_seed(self.config.seed, "torch-global"))
        threads = self.config.threads or (1 if self.config.is_preset else None)
        if threads:
            torch.set_num_threads(threads)
        self.runner.run(force)
        return self.runner.path("report") / "report.md"

    def check(self) -> None:
        """What can be checked before any stage runs (so nothing is deleted or spent first):
        the frozen layers against the model, each agent's own settings, every line of the
        human labels and the turn reward's name."""
        num_layers = layer_count(self.config.model)
        freeze = self.config.resolved_freeze_layers(num_layers)
        if freeze > num_layers:
            raise ValueError(
                f"freeze_layers={freeze} exceeds the {num_layers} layers of {self.config.model!r}"
            )
        for name in self.config.agents:
            make_agent(name).check(self.config)
        if self.config.human_labels is not None:
            load_preferences(self.config.human_labels)
        if self.config.turn_reward is not None:  # an unknown name fails here, listing known ones
            from rlhf_gym.rewards import make_reward_predictor

            make_reward_predictor(self.config.turn_reward)

    # ------------------------------------------------------------------ stage list
    def _stages(self) -> list[Stage]:
        def fingerprint(kind: str, **extra: Any) -> str:
            return json.dumps({**self.config.stage_settings(kind), **extra}, sort_keys=True)

        agent_stages = [
            Stage(
                agent_stage(name),
                lambda out, name=name: self._agent(name, out),
                ("reward",),
                fingerprint("agent", agent_name=name),
                data_parallel=getattr(make_agent(name), "data_parallel", False),
            )
            for name in self.config.agents
        ]
        evaluate = fingerprint("evaluate")
        # the labels file by content: a file rewritten in place must redo the stages it feeds
        preferences = fingerprint("preferences", human_labels_sha256=self._human_labels_digest())
        reward = fingerprint("reward", trunk=self.reward_backbone, trainer=self._reward_settings())
        return [
            # sft, reward and the native agents share their batches among the processes of a
            # data-parallel launch; the rest runs on rank 0
            Stage("sft", self._sft, (), fingerprint("sft"), data_parallel=True),
            Stage("preferences", self._preferences, ("sft",), preferences),
            # the resolved trainer settings too: a changed default must redo the stage
            Stage("reward", self._reward, ("preferences",), reward, data_parallel=True),
            *agent_stages,
            Stage("evaluate", self._evaluate, tuple(s.name for s in agent_stages), evaluate),
            Stage("report", self._report, ("evaluate",), evaluate),
        ]

    def _reward_settings(self) -> dict[str, Any]:
        """The reward trainer's settings that change its output (not how it shows progress)."""
        settings = asdict(self._reward_config())
        del settings["progress_bar"]
        return settings

    def _human_labels_digest(self) -> str | None:
        if self.config.human_labels is None:
            return None
        return hashlib.sha256(Path(self.config.human_labels).read_bytes()).hexdigest()

    # ------------------------------------------------------------------ stages
    def _sft(self, out: Path) -> dict[str, Any]:
        from rlhf_gym.training.sft_config import SFTConfig
        from rlhf_gym.training.sft_trainer import SFTTrainer

        if not self.config.use_sft:
            return {"skipped": True, "reason": "pretrained model (pass --sft to fine-tune it)"}
        demonstrations = self.task.demonstrations()
        model, tokenizer = load_model(self.config.model), load_tokenizer(self.config.model)
        args = SFTConfig(
            num_train_epochs=self.config.sft_epochs,
            learning_rate=self.config.sft_learning_rate,
            seed=self.config.seed,
            progress_bar=self.config.progress_bars,
        )
        trainer = SFTTrainer(model, args, demonstrations, tokenizer)
        losses = trainer.train()
        model.save_pretrained(out / "model")
        tokenizer.save_pretrained(out / "model")
        return {"demonstrations": len(demonstrations), "epoch_losses": losses}

    def _preferences(self, out: Path) -> dict[str, Any]:
        if self.config.human_labels is not None:
            pairs = load_preferences(self.config.human_labels)
            write_jsonl(out / "pairs.jsonl", pairs)
            return {"pairs": len(pairs), "source": self.config.human_labels}
        if self.task.is_dialogue:
            return self._conversation_preferences(out)
        from rlhf_gym.models.sampling import sample_completions
        from rlhf_gym.preferences.collection import pair_up
        from rlhf_gym.preferences.simulated import SimulatedLabeler, bayes_bound

        policy, tokenizer = self.outputs.starting_policy()
        prompts = self.outputs.train_prompts(self.config.preference_prompts)
        groups = sample_completions(
            policy, tokenizer, prompts, self.config.completions_per_prompt,
            max_new_tokens=self.config.max_new_tokens, seed=self.config.seed,
            progress_bar=self.config.progress_bars,
        )  # fmt: skip
        comparisons = pair_up(prompts, groups, seed=self.config.seed)
        labeler = SimulatedLabeler(
            self.task.gold_reward, temperature=self.config.label_temperature, seed=self.config.seed
        )
        pairs = labeler.label(comparisons)
        write_jsonl(out / "pairs.jsonl", pairs)
        bound = bayes_bound(*labeler.gold_scores(comparisons), self.config.label_temperature)
        return {
            "pairs": len(pairs),
            "source": "simulated",
            "bayes_optimal_accuracy": bound.accuracy,
            "gold_tie_share": bound.gold_tie_share,
        }

    def _conversation_preferences(self, out: Path) -> dict[str, Any]:
        """A dialogue task's preferences: ``completions_per_prompt`` conversations of each of
        ``preference_prompts`` train openings (cycled), played by the starting policy against
        the train secrets, paired within each opening and labeled by their gold scores."""
        from rlhf_gym.pipeline.dialogue import label_conversations, play_conversations
        from rlhf_gym.preferences.io import write_json_lines
        from rlhf_gym.preferences.simulated import SimulatedLabeler

        c, k = self.config, self.config.completions_per_prompt
        policy, tokenizer = self.outputs.starting_policy()
        openings = self.outputs.conversation_openings("train", c.preference_prompts)
        played = play_conversations(
            policy, None, tokenizer, self.task, [o for o in openings for _ in range(k)],
            split="train", max_new_tokens=c.max_new_tokens,
            seed=derived_seed(c.seed, "preference-conversations"),
        )  # fmt: skip
        groups = [played.conversations[i : i + k] for i in range(0, len(openings) * k, k)]
        gold = [played.gold[i : i + k] for i in range(0, len(openings) * k, k)]
        labeler = SimulatedLabeler(
            self.task.gold_reward, temperature=c.label_temperature, seed=c.seed
        )
        labeled = label_conversations(groups, gold, labeler, seed=c.seed)
        write_jsonl(out / "pairs.jsonl", labeled.pairs)
        write_json_lines(out / "conversations.jsonl", labeled.records)
        return {
            "pairs": len(labeled.pairs),
            "source": "simulated",
            "conversations": len(played.conversations),
            "success_rate": float((played.gold > 0).mean()),
            "bayes_optimal_accuracy": labeled.bound.accuracy,
            "gold_tie_share": labeled.bound.gold_tie_share,
        }

    def _reward(self, out: Path) -> dict[str, Any]:
        from rlhf_gym.training.reward_trainer import RewardModelTrainer

        pairs = self.outputs.pairs()
        held_out_prompts = self._held_out_prompts(pairs)
        train = [p for p in pairs if p.prompt not in held_out_prompts]
        evaluation = [p for p in pairs if p.prompt in held_out_prompts]
        trunk, reference = self._reward_trunk(), self._reference_samples()
        members = []
        for member, directory in enumerate(reward_member_dirs(self.config.reward_ensemble_size)):
            trainer = RewardModelTrainer(trunk, self._reward_config(member), train, evaluation)
            history = trainer.train()
            accuracy = trainer.evaluate()["eval_accuracy"]
            mean, std = trainer.normalize(*reference)
            trainer.save_pretrained(out / directory)
            normalisation = {"mean": mean, "std": std}
            members.append(
                {"accuracy": accuracy, "history": history, "normalisation": normalisation}
            )
        prompts_file = out / "heldout_prompts.json"
        prompts_file.write_text(json.dumps(sorted(held_out_prompts), indent=1), encoding="utf-8")
        summary = {
            "train_pairs": len(train),
            "heldout_pairs": len(evaluation),
            "heldout_prompts": len(held_out_prompts),
            **members[0],
            "frozen_trunk": trainer.args.freeze_trunk,
        }
        if len(members) > 1:  # the accuracy of what the agents optimise: the ensemble
            summary["members"] = members
            summary["accuracy"] = self._ensemble_accuracy(out, evaluation)
        accuracy = summary["accuracy"]
        summary["accuracy_standard_error"] = math.sqrt(accuracy * (1 - accuracy) / len(evaluation))
        held_out = [p.prompt in held_out_prompts for p in pairs]
        summary["bayes_bound"] = self._bayes_bound(pairs, held_out)
        return summary

    def _ensemble_accuracy(self, out: Path, pairs: list[Any]) -> float:
        from rlhf_gym.rewards.ensemble import EnsemblePredictor
        from rlhf_gym.rewards.learned import LearnedRewardModel

        c = self.config
        members = [
            LearnedRewardModel.from_pretrained(out / name)
            for name in reward_member_dirs(c.reward_ensemble_size)
        ]
        ensemble = EnsemblePredictor(
            members, c.reward_ensemble_objective, c.reward_uncertainty_coef
        )
        prompts = [p.prompt for p in pairs]
        chosen = ensemble(prompts, [p.chosen for p in pairs])
        return float(np.mean(chosen > ensemble(prompts, [p.rejected for p in pairs])))

    def _held_out_prompts(self, pairs: list[Any]) -> set[str]:
        """A random ``reward_heldout_fraction`` of the pairs' prompts (at least one, and at
        least one left for training): whole prompts, so held-out accuracy is generalisation."""
        prompts = list(dict.fromkeys(p.prompt for p in pairs))
        if len(prompts) < 2:
            raise StageError(
                f"the preference pairs have {len(prompts)} distinct prompt(s); holding out whole "
                "prompts for the reward model's accuracy needs at least 2"
            )
        count = min(
            max(1, round(self.config.reward_heldout_fraction * len(prompts))), len(prompts) - 1
        )
        order = numpy_rng(self.config.seed, "reward-split").permutation(len(prompts))
        return {prompts[i] for i in order[:count]}

    def _bayes_bound(self, pairs: list[Any], held_out: list[bool]) -> dict[str, Any] | None:
        """The simulated labels' Bayes bound on exactly the held-out pairs (None for human
        labels); a dialogue's pairs are scored as the conversations they render."""
        if self.config.human_labels is not None:
            return None
        from rlhf_gym.preferences.pair import Comparison
        from rlhf_gym.preferences.simulated import SimulatedLabeler, bayes_bound

        temperature = self.config.label_temperature
        if self.task.is_dialogue:
            from rlhf_gym.pipeline.dialogue import record_gold_scores
            from rlhf_gym.rewards import make_reward_predictor

            gold = make_reward_predictor(self.task.gold_reward)
            chosen, rejected = record_gold_scores(self.outputs.conversation_records(), gold)
            return bayes_bound(chosen[held_out], rejected[held_out], temperature).as_dict()
        labeler = SimulatedLabeler(self.task.gold_reward, temperature)  # scores one batch
        comparisons = [
            Comparison(p.prompt, p.chosen, p.rejected)
            for p, held in zip(pairs, held_out, strict=True)
            if held
        ]
        return bayes_bound(*labeler.gold_scores(comparisons), temperature).as_dict()

    @property
    def reward_backbone(self) -> str:
        """``reward_backbone``, else the task's default trunk, else ``"policy"``."""
        return self.config.reward_backbone or self.task.reward_backbone or POLICY_TRUNK

    def _reward_trunk(self) -> str:
        """The reward model's starting trunk: a name or path, or for ``"policy"`` the policy's
        (after SFT, the fine-tuned one)."""
        if self.reward_backbone == SHIPPED_REWARD_TRUNK:
            from rlhf_gym.rewards.learned import default_sentiment_model_path

            return str(default_sentiment_model_path())
        if self.reward_backbone != POLICY_TRUNK:
            return self.reward_backbone
        return self.outputs.starting_source()

    def _reward_config(self, member: int = 0):
        """The reward trainer's settings; each ensemble member after the first draws its head
        and shuffling from its own stream."""
        from rlhf_gym.training.reward_config import RewardConfig

        c = self.config
        small_trunks = (*PRESETS, SHIPPED_REWARD_TRUNK)
        preset_trunk = self.reward_backbone in small_trunks or (
            c.is_preset and self.reward_backbone == POLICY_TRUNK
        )
        full = preset_trunk if c.reward_full_finetune is None else c.reward_full_finetune
        top_layers = c.reward_trainable_layers
        trains_trunk = full or top_layers is not None
        return RewardConfig(
            num_train_epochs=c.reward_epochs,
            freeze_trunk=not trains_trunk,
            trainable_layers=top_layers,
            learning_rate=c.reward_learning_rate
            or self._default_reward_learning_rate(trains_trunk, top_layers is not None),
            batch_size=c.reward_batch_size,
            center_rewards_coefficient=c.reward_center_coefficient,
            early_stopping_patience=c.reward_early_stopping_patience,
            seed=c.seed if member == 0 else derived_seed(c.seed, f"reward-member-{member}"),
            mixed_precision=c.mixed_precision,
            progress_bar=c.progress_bars,
        )

    def _default_reward_learning_rate(self, trains_trunk: bool, top_layers: bool) -> float:
        """A lone head takes large steps; a pretrained trunk small ones, so that fine-tuning on
        the run's pairs (mostly gold ties for a fresh tiny policy) adapts its knowledge instead
        of erasing it (measured: held-out Spearman with gold 0.80 at 3e-4, 0.36 at 3e-3)."""
        if not trains_trunk:
            return 1e-2
        return 3e-4 if self.reward_backbone == SHIPPED_REWARD_TRUNK or top_layers else 3e-3

    def _reference_samples(self) -> tuple[list[str], list[str]]:
        """The responses of the preference pairs, on which the reward's normalisation is fitted
        (with simulated labels they are the starting policy's samples: no need to sample again)."""
        responses = {
            (p.prompt, r): None for p in self.outputs.pairs() for r in (p.chosen, p.rejected)
        }
        return [prompt for prompt, _ in responses], [response for _, response in responses]

    def _agent(self, name: str, out: Path) -> dict[str, Any]:
        try:
            result = make_agent(name).train(self.outputs, out)
        except FloatingPointError as err:  # a diverged update: the stage must not finish
            raise StageError(f"agent {name!r}: {err}") from err
        result.policy.save_pretrained(out / "policy")
        self.outputs.tokenizer().save_pretrained(out / "policy")
        check_finite_weights(out / "policy", name)
        (out / "curve.json").write_text(json.dumps(result.curve, indent=2), encoding="utf-8")
        if result.heldout_curve:
            (out / "heldout_curve.json").write_text(
                json.dumps(result.heldout_curve, indent=2), encoding="utf-8"
            )
        return {**result.summary, "trainable_parameters": trainable_parameter_count(result.policy)}

    def _evaluate(self, out: Path) -> dict[str, Any]:
        if self.task.is_dialogue:
            from rlhf_gym.pipeline.dialogue import evaluate_dialogue_run

            summary = evaluate_dialogue_run(self.outputs)
        else:
            summary = evaluate_run(self.outputs)
        details = {key: summary.pop(key) for key in ("samples", "calibration")}
        (out / "details.json").write_text(json.dumps(details, indent=2), encoding="utf-8")
        return summary

    def _report(self, out: Path) -> dict[str, Any]:
        return {"report": str(write_run_report(self.outputs, out))}


def check_finite_weights(directory: Path, agent: str) -> None:
    """Refuse a diverged policy (a NaN or infinite weight): its stage must not be marked done."""
    from safetensors.torch import load_file

    for path in sorted(directory.glob("*.safetensors")):
        bad = [name for name, tensor in load_file(path).items() if not tensor.isfinite().all()]
        if bad:
            raise StageError(
                f"agent {agent!r} diverged: {len(bad)} weight tensors are not finite (first: "
                f"{bad[0]}); lower --learning-rate or --kl-coef and rerun"
            )
