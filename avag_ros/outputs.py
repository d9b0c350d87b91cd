"""Detection -> ROS messages: masks, probability image, overlay, AffordanceDetection, markers."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from avag.msg import AffordanceDetection
from avag_ros.conversions import (
    ns_to_stamp,
    numpy_to_image,
    points_to_pointcloud2,
    region_pose_to_msgs,
)

FUNCTION_BGR = (0, 0, 255)  # red: where the action happens
DEPENDENCY_BGR = (255, 128, 0)  # blue: what it relies on


def mask_image(mask: np.ndarray, header: Header) -> Image:
    return numpy_to_image(mask.astype(np.uint8) * np.uint8(255), "mono8", header)


def probability_image(prob: np.ndarray, header: Header) -> Image:
    return numpy_to_image(prob.astype(np.float32, copy=False), "32FC1", header)


def overlay_bgr(rgb: np.ndarray, fmask: np.ndarray, dmask: np.ndarray, alpha: float) -> np.ndarray:
    """The frame with the dependency (blue) and function (red) regions tinted and outlined."""
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    for mask, color in ((dmask, DEPENDENCY_BGR), (fmask, FUNCTION_BGR)):
        if not mask.any():
            continue
        tint = np.empty_like(out)
        tint[:] = color
        m = mask.astype(bool)
        out[m] = cv2.addWeighted(out, 1.0 - alpha, tint, alpha, 0.0)[m]
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, color, 2)
    return out


def overlay_image(det: Any, header: Header, alpha: float) -> Image:
    out = overlay_bgr(det.rgb, det.function_mask, det.dependency_mask, alpha)
    if det.action_label:  # what was heard, top left
        text = f"{det.action_label} {det.action_confidence:.2f}"
        scale = max(0.4, out.shape[1] / 640)
        cv2.putText(out, text, (6, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, (6, int(22 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return numpy_to_image(out, "bgr8", header)


def detection_to_msg(det: Any, header: Header, fmask: Image, dmask: Image) -> AffordanceDetection:
    msg = AffordanceDetection()
    msg.header = header
    msg.event_start = ns_to_stamp(round(det.event.start_time * 1e9))
    msg.event_end = ns_to_stamp(round(det.event.end_time * 1e9))
    msg.event_onset = ns_to_stamp(round(det.event.onset_time * 1e9))
    msg.event_decided = ns_to_stamp(det.decided_ns)
    msg.action_label, msg.action_confidence = det.action_label, float(det.action_confidence)
    msg.function_mask, msg.dependency_mask = fmask, dmask
    msg.function_score = det.function_score
    msg.dependency_score = det.dependency_score
    n = float(det.function_mask.size)
    msg.function_area = float(det.function_mask.sum()) / n
    msg.dependency_area = float(det.dependency_mask.sum()) / n
    geo = det.geometry
    if geo.points.shape[0]:
        msg.grasp_region = points_to_pointcloud2(geo.points, geo.colors, geo.probability, header)
    if geo.pose is not None:
        msg.has_pose = True
        msg.pose, msg.principal_extents = region_pose_to_msgs(geo.pose)
    msg.centroid_u, msg.centroid_v = (float(v) for v in geo.centroid_uv)
    msg.inference_ms = float(det.inference_ms)
    return msg


def markers_for(det: Any, header: Header, lifetime_s: float, ns: str = "") -> MarkerArray:
    """Centroid sphere + major-axis arrow of the function region (DELETEALL when no pose)."""
    arr = MarkerArray()
    pose = det.geometry.pose
    if pose is None:
        arr.markers.append(Marker(header=header, action=Marker.DELETEALL))
        return arr
    sec = int(lifetime_s)
    life = Duration(sec=sec, nanosec=int((lifetime_s - sec) * 1e9))
    ns = (ns.strip("/") + "/avag").strip("/")
    c = pose.centroid.astype(float)
    sphere = Marker(header=header, ns=ns, id=0, type=Marker.SPHERE, action=Marker.ADD, lifetime=life)
    sphere.pose.position.x, sphere.pose.position.y, sphere.pose.position.z = c
    sphere.pose.orientation.w = 1.0
    sphere.scale.x = sphere.scale.y = sphere.scale.z = 0.03
    sphere.color.r, sphere.color.a = 1.0, 0.9
    arrow = Marker(header=header, ns=ns, id=1, type=Marker.ARROW, action=Marker.ADD, lifetime=life)
    arrow.pose, _ = region_pose_to_msgs(pose)  # arrow points along the pose x axis = major axis
    arrow.scale.x = max(2.0 * float(pose.extents[0]), 0.05)
    arrow.scale.y = arrow.scale.z = 0.01
    arrow.color.g, arrow.color.a = 1.0, 0.9
    arr.markers += [sphere, arrow]
    if det.action_label:  # the action's name floating above the grasp region
        text = Marker(header=header, ns=ns, id=2, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, lifetime=life)
        text.pose.position.x, text.pose.position.y, text.pose.position.z = c[0], c[1] - 0.05, c[2]
        text.pose.orientation.w = 1.0
        text.scale.z = 0.04
        text.color.r = text.color.g = text.color.b = text.color.a = 1.0
        text.text = f"{det.action_label} ({det.action_confidence:.2f})"
        arr.markers.append(text)
    return arr


def rejected_msg(rejected: Any, frame_id: str, threshold: float) -> Any:
    """avag/RejectedEvent for a sound the action head says is not an action."""
    from avag.msg import RejectedEvent

    ev, heard = rejected.event, rejected.heard
    msg = RejectedEvent()
    msg.header = Header(stamp=ns_to_stamp(round(ev.onset_time * 1e9)), frame_id=frame_id)
    msg.event_start = ns_to_stamp(round(ev.start_time * 1e9))
    msg.event_end = ns_to_stamp(round(ev.end_time * 1e9))
    msg.top_label, msg.top_confidence = heard.label, float(heard.confidence)
    msg.labels = [label for label, _p in heard.top]
    msg.confidences = [float(p) for _label, p in heard.top]
    msg.threshold = float(threshold)
    return msg
