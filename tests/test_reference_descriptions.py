"""A shipped reference model's description tells its training steps as its weights record them."""

import json
import re

import pytest
from safetensors import safe_open

from vdmbench.config.model import list_model_configs, load_model_config
from vdmbench.core.paths import weights_dir

REFERENCE = [n for n in list_model_configs() if load_model_config(n)["adapter"] == "reference"
             and load_model_config(n)["params"].get("weights")]


@pytest.mark.parametrize("name", REFERENCE)
def test_description_states_the_steps_the_weights_were_trained_for(name):
    cfg = load_model_config(name)
    with safe_open(str(weights_dir() / cfg["params"]["weights"]), "pt") as f:
        steps = json.loads(f.metadata()["train"])["steps"]
    stated = [int(s.replace(",", "")) for s in re.findall(r"([\d,]+) training steps", cfg.get("description", ""))]
    assert stated in ([], [steps]), f"{name}: description says {stated} steps, weights say {steps}"
