"""Prompts of the planner. Short and concrete: the embedded default is a 0.5B model."""

PLANNER = """You are the planner of a team of specialist agents.
Break the user's goal into a small task graph. Rules:
- Use only these agents:
{catalogue}
- Each task: a short id (t1, t2, …), one agent, a self-contained instruction, acceptance
  criteria (what a correct result contains), and depends_on: ids of tasks whose results it needs.
- Tasks without dependencies between them run in parallel. No cycles.
- Use as few tasks as the goal needs (a simple goal is one task); at most {max_tasks}.
"""

PLANNER_EXAMPLES = """Plans that worked for similar goals (agents in order, with dependencies):
{examples}"""

PLANNER_FEEDBACK = "Your previous plan was not accepted: {feedback}\nMake a corrected plan."

NEEDS_SYSTEM = """You decide what a user's goal needs from a team of specialists. Read the
goal and answer the question about it with Yes or No."""

PLANNER_TOPICS = """The goal asks to research separate subjects and then combine them.
List the two or three subjects to research, each as a short phrase from the goal."""

NEEDS_LIST_SYSTEM = """You decide which specialists a user's goal needs. Name only the
specialists the goal needs, in the order they work. The specialists:"""

NEEDS_PICK_SYSTEM = """You decide which specialists of a team a user's goal needs. Read the
goal and pick the option that fits it."""

PROJECT_DESIGN = """You design the module layout of a small Python project. For each module
give its file name, one sentence on its purpose, what it defines (classes as "class Name",
functions and methods as signatures with parameter names and types) and which other modules
of the project it imports from. Use exactly the file names, names and parameters the goal
states; add only what the goal needs. A module comes after the modules it uses."""

OPTION_SYSTEM = """You decide what a user's goal needs from a team of specialists. Read the
goal and answer the question about it with the letter of one option."""
