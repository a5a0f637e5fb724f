// LesionOverlay: the SDK's outline (Segmentation.svgPath, photo pixels) drawn with Skia over the
// displayed photo: a translucent fill and a contour, scaled from photo pixels to the view.

import React, { useMemo } from "react";
import { Group, Path, Skia } from "@shopify/react-native-skia";

export interface LesionOverlayProps {
  /** SVG path data in photo pixels (Segmentation.svgPath). */
  svgPath: string;
  /** The photo's size in pixels. */
  photoWidth: number;
  photoHeight: number;
  /** Where the photo is drawn in the canvas (contain-fit: see fitContain). */
  x?: number;
  y?: number;
  scale: number;
  color?: string;
  fillOpacity?: number;
  strokeWidth?: number;
}

/** Scale and offset that fit a photo inside a view (resizeMode "contain"). */
export function fitContain(photoW: number, photoH: number, viewW: number, viewH: number): { x: number; y: number; scale: number } {
  const scale = Math.min(viewW / photoW, viewH / photoH);
  return { x: (viewW - photoW * scale) / 2, y: (viewH - photoH * scale) / 2, scale };
}

/** Put inside a Skia <Canvas> above the photo's <Image>. */
export function LesionOverlay({ svgPath, x = 0, y = 0, scale, color = "#ff3b30", fillOpacity = 0.3, strokeWidth = 2 }: LesionOverlayProps): React.ReactElement | null {
  const path = useMemo(() => (svgPath ? Skia.Path.MakeFromSVGString(svgPath) : null), [svgPath]);
  if (!path) return null;
  return (
    <Group transform={[{ translateX: x }, { translateY: y }, { scale }]}>
      <Path path={path} color={color} opacity={fillOpacity} style="fill" />
      <Path path={path} color={color} style="stroke" strokeWidth={strokeWidth / scale} strokeJoin="round" />
    </Group>
  );
}
