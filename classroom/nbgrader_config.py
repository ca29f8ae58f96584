# nbgrader's course configuration for the backpropviz lessons: copy it into your course directory
# (beside source/) and set the three CourseDirectory lines. It adds one step to nbgrader's release
# (`nbgrader generate_assignment`): the cells tagged "teacher" (each lesson's answer sheet for its
# exit questions) are removed before the student's copy is made, as `backpropviz lessons` does.
from nbconvert.preprocessors import TagRemovePreprocessor
from nbgrader.converters import GenerateAssignment

c = get_config()  # noqa: F821 (defined by Jupyter's config loader)
# c.CourseDirectory.course_id = "backprop"
# c.CourseDirectory.root = "/home/teacher/backprop"
# c.CourseDirectory.db_url = "sqlite:////home/teacher/backprop/gradebook.db"

c.TagRemovePreprocessor.enabled = True
c.TagRemovePreprocessor.remove_cell_tags = {"teacher"}
c.GenerateAssignment.preprocessors = [
    TagRemovePreprocessor, *GenerateAssignment.class_traits()["preprocessors"].default()]
