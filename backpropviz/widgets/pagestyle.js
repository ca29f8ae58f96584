// A widget that shows nothing: anywidget puts its CSS file (lab.css) in the page.
export default { render() {} };
