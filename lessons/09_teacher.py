# %% [markdown]
# # The class, live: what every student predicted (the teacher's view)
#
# For the teacher only: `backpropviz teacher CLASS_DIR` (or `./dev teacher`) serves this page
# with its own token, on a port the students are not given; the students' classroom app
# (`backpropviz classroom --class CLASS_DIR`) never has it. Students join with the class code in
# their Stepper's predict box. The view reads their answers every 1.5 s: for the step the class
# is on, who answered, the share right first time, the slips, the numbers typed; a table of every
# step (**open** shows that step in your own Stepper below); **projector** hides every name.

# %%
# NBVAL_IGNORE_OUTPUT
# TEACHER: the same network, example and seed as the classroom app (06_classroom's first cell)
import os

import numpy as np
import backpropviz as bpv

net = bpv.mlp([2, 3, 1], activation="relu", loss="logistic", seed=0)
x, y = np.array([1.0, -2.0]), 1.0

mine = bpv.Stepper(net, x, y)       # your own Stepper: the table's "open" buttons move it
# the server's class: BPV_CLASS_DIR (one server), or the hub's class service (BPV_CLASS_URL)
view = bpv.TeacherView(code=os.environ.get("BPV_CLASS_CODE"), stepper=mine)
view

# %%
# NBVAL_IGNORE_OUTPUT
mine
