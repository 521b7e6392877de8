"""The state every step flow shares with the supervisor: the tool loop's input and output
(``agents.state``), so ``run_task`` reads every specialist the same way."""

from __future__ import annotations

from agents.state import SpecialistInput as FlowInput
from agents.state import SpecialistOutput as FlowOutput


class FlowState(FlowInput, FlowOutput, total=False):
    """Input and output; each flow adds its own working keys."""

