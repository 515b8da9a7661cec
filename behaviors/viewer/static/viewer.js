/*
 * py-trees-tree-viewer's glue between the viewer server and the py_trees_js renderer.
 *
 * Snapshots arrive as Server-Sent Events ('snapshot': one tree, JSON, the shape made by
 * behaviors/snapshot.py) and go to render_tree() (index.html), which adds them to the
 * renderer's timeline and draws the newest. 'status' events say where snapshots come from.
 *
 * After each drawing, every behaviour's elements get data-status / data-behaviour-id
 * attributes and a status-<status> class, and the tree's tip an is-tip class: the page's
 * CSS uses them, and so can a test or a person in the browser's inspector.
 */
(function () {
  'use strict'

  var STATUS_CLASSES = 'status-running status-success status-failure status-invalid'
  var annotate_pending = false

  function annotate () {
    annotate_pending = false
    var tree = canvas_graph.get('tree') || {}
    _.each(canvas_graph.getElements(), function (element) {
      if (element.get('type') !== 'trees.Node') {
        return
      }
      var view = canvas_paper.findViewByModel(element)
      if (!view || !view.$box) {
        return  // not drawn yet: the paper renders asynchronously, 'render:done' comes later
      }
      var status = element.get('status') || 'INVALID'
      var behaviour_id = element.get('behaviour_id')
      view.$box.removeClass(STATUS_CLASSES).addClass('status-' + status.toLowerCase())
      view.$box.toggleClass('is-tip', behaviour_id === tree.tip)
      view.$box.attr({'data-status': status, 'data-behaviour-id': behaviour_id})
      view.el.setAttribute('data-status', status)
      view.el.setAttribute('data-behaviour-id', behaviour_id)
    })
    show_displayed(tree)
  }

  function schedule_annotate () {
    if (!annotate_pending) {
      annotate_pending = true
      window.setTimeout(annotate, 30)
    }
  }

  function clock (seconds) {
    return new Date(seconds * 1000).toLocaleTimeString()
  }

  function show_displayed (tree) {
    if (!tree.behaviours) {
      return
    }
    var root = null
    _.each(tree.behaviours, function (behaviour) {
      var is_child = _.some(tree.behaviours, function (other) {
        return _.includes(other.children || [], behaviour.id)
      })
      if (!is_child) {
        root = behaviour
      }
    })
    var tip = tree.tip && tree.behaviours[tree.tip]
    $('#viewer_state').html(
      'showing the tick of ' + clock(tree.timestamp) +
      (root ? ' &middot; root <b class="status-' + root.status.toLowerCase() + '">' +
              root.status + '</b>' : '') +
      (tip ? ' &middot; tip ' + tip.name : '')
    ).removeClass('viewer_error')
    document.body.setAttribute('data-displayed-timestamp', String(tree.timestamp))
  }

  function show_status (status) {
    $('#viewer_source').text(status.source)
    if (!status.snapshots) {
      $('#viewer_state').text('waiting for the first snapshot (is patrol_node running?)')
    }
    $('#viewer_title').text('Behaviour tree' + (status.snapshots
      ? ' \u00b7 ' + status.snapshots + ' snapshot' + (status.snapshots === 1 ? '' : 's')
      : ''))
  }

  canvas_graph.on('add reset change:status change:visited change:tree', schedule_annotate)
  canvas_paper.on('render:done', schedule_annotate)

  var events = new EventSource('events')
  events.addEventListener('status', function (event) {
    show_status(JSON.parse(event.data))
  })
  events.addEventListener('snapshot', function (event) {
    render_tree({tree: JSON.parse(event.data)})
    schedule_annotate()
  })
  events.onerror = function () {
    $('#viewer_state').text('lost the connection to py-trees-tree-viewer; retrying...')
      .addClass('viewer_error')
  }
})()
