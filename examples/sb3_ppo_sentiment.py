"""Train the tiny LM with stable-baselines3 on rlhf_gym/Sentiment-v0, with a KL penalty.

Prints the gold score (VADER) on held-out prompts (split="test") before and after training, and
the KL to the reference (the initial policy) in nats per completion.

    python examples/sb3_ppo_sentiment.py --algo ppo --seed 0 --timesteps 20000

The training reward is the env's default for the task. Today that is the gold labeler itself
("vader"); once the task's default becomes a learned reward model, the gold score printed here
measures what the proxy-trained policy really achieves.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

import rlhf_gym  # noqa: F401  (registers the envs)
from agents.sb3 import CausalLMPolicy, KLPenaltyCallback, ReferenceModel
from rlhf_gym.models import load_model

ENV_ID = "rlhf_gym/Sentiment-v0"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algo", choices=["ppo", "a2c", "maskable-ppo"], default="ppo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--timesteps", type=int, default=20_000, help="tokens generated in training"
    )
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--n-steps", type=int, default=48, help="rollout steps per env (PPO)")
    parser.add_argument("--batch-size", type=int, default=64, help="PPO minibatch")
    parser.add_argument("--n-epochs", type=int, default=2, help="PPO epochs per rollout")
    parser.add_argument("--kl-coef", type=float, default=0.02, help="initial KL coefficient")
    parser.add_argument("--adaptive-kl", action="store_true", help="Ziegler's adaptive beta")
    parser.add_argument("--top-p", type=float, default=0.95, help="NLPO mask (maskable-ppo)")
    parser.add_argument("--eval-episodes", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 suits tiny)")
    return parser.parse_args()


def make_env(args: argparse.Namespace, split: str, n_envs: int, seed: int) -> VecEnv:
    wrapper, wrapper_kwargs = None, None
    if args.algo == "maskable-ppo":
        from agents.sb3 import TopPMaskWrapper

        # One reference LM shared read-only by every env's wrapper.
        reference_lm = load_model("tiny")
        wrapper, wrapper_kwargs = TopPMaskWrapper, {"model": reference_lm, "top_p": args.top_p}
    env_kwargs = {"render_mode": None, "split": split}
    if split == "test":
        env_kwargs["reward_predictor"] = "vader"  # the gold score, whatever the training reward
    return make_vec_env(
        ENV_ID,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=env_kwargs,
        wrapper_class=wrapper,
        wrapper_kwargs=wrapper_kwargs,
    )


def make_agent(args: argparse.Namespace, env: VecEnv) -> BaseAlgorithm:
    common = {
        "policy_kwargs": {"model": "tiny"},
        "seed": args.seed,
        "learning_rate": args.learning_rate,
    }
    if args.algo == "a2c":
        # Adam and whitened advantages, as in PPO; one gradient step per 16 x 24 tokens.
        a2c_kwargs = {"n_steps": 24, "gamma": 1.0, "gae_lambda": 0.95, "vf_coef": 0.1}
        a2c_kwargs |= {"normalize_advantage": True, "use_rms_prop": False}
        return A2C(CausalLMPolicy, env, **a2c_kwargs, **common)
    ppo_kwargs = {"n_steps": args.n_steps, "batch_size": args.batch_size, "n_epochs": args.n_epochs}
    ppo_kwargs |= {"gamma": 1.0, "gae_lambda": 0.95}
    ppo_kwargs |= {"vf_coef": 0.1, "ent_coef": 0.0}
    if args.algo == "ppo":
        return PPO(CausalLMPolicy, env, **ppo_kwargs, **common)
    from sb3_contrib import MaskablePPO

    from agents.sb3 import MaskableCausalLMPolicy

    return MaskablePPO(MaskableCausalLMPolicy, env, **ppo_kwargs, **common)


@torch.no_grad()
def evaluate(
    agent: BaseAlgorithm, reference: ReferenceModel, env: VecEnv, episodes: int, masked: bool
) -> dict:
    """Sample ``episodes`` completions on held-out prompts: gold score and KL per completion."""
    policy = agent.policy
    policy.set_training_mode(False)
    obs, scores, kls = env.reset(), [], []
    running_kl = np.zeros(env.num_envs)
    while len(scores) < episodes:
        obs_tensor = obs_as_tensor(obs, policy.device)
        masks = _action_masks(env) if masked else None
        actions, _, logp = policy(obs_tensor, action_masks=masks)
        logp_ref = reference.logprobs(
            obs_tensor["input_ids"], obs_tensor["attention_mask"], actions
        )
        running_kl += (logp - logp_ref).numpy()
        obs, _, dones, infos = env.step(actions.numpy())
        for i in np.flatnonzero(dones):
            scores.append(infos[i]["score"])
            kls.append(running_kl[i])
            running_kl[i] = 0.0
    return {"gold": float(np.mean(scores[:episodes])), "kl": float(np.mean(kls[:episodes]))}


def _action_masks(env: VecEnv) -> np.ndarray:
    from sb3_contrib.common.maskable.utils import get_action_masks

    return get_action_masks(env)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    agent = make_agent(args, make_env(args, "train", args.n_envs, args.seed))
    reference = ReferenceModel.from_policy(agent.policy)
    eval_env = make_env(args, "test", 16, args.seed + 10_000)
    masked = args.algo == "maskable-ppo"
    before = evaluate(agent, reference, eval_env, args.eval_episodes, masked)
    print(f"before: gold {before['gold']:+.3f}  KL {before['kl']:.2f} nats")
    kl = KLPenaltyCallback(args.kl_coef, args.adaptive_kl, reference=reference, gold_reward="vader")
    start, cpu_start = time.perf_counter(), time.process_time()
    agent.learn(args.timesteps, callback=kl)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    after = evaluate(agent, reference, eval_env, args.eval_episodes, masked)
    print(
        f"after:  gold {after['gold']:+.3f}  KL {after['kl']:.2f} nats  "
        f"beta {kl.controller.value:.4f}"
    )
    print(
        f"RESULT algo={args.algo} seed={args.seed} timesteps={args.timesteps} "
        f"train_s={seconds:.0f} train_cpu_s={cpu_seconds:.0f} "
        f"gold_before={before['gold']:.4f} gold_after={after['gold']:.4f} "
        f"kl_after={after['kl']:.3f}"
    )


if __name__ == "__main__":
    main()
